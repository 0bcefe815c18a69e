"""Media validation and probing shared by every detector.

Every detector calls :func:`validate_path` (cheap ``stat``/``open`` checks) and then
:func:`probe` (one ``ffmpeg -i`` run, headers only, no decoding) before it decodes
anything. Both raise :class:`~forensics_core.errors.MediaProcessingError` with one of
the stable codes in :data:`~forensics_core.errors.MEDIA_ERROR_CODES`, so a bad file
becomes a clear, scriptable error instead of a traceback from deep inside a decoder.

Design rules, and why:

* **Nothing heavy at import time.** ``moviepy`` (which pulls in numpy) and
  ``imageio_ffmpeg`` are imported inside functions, so ``import forensics_core.media``
  stays cheap and the CLI starts fast.
* **ffmpeg is always run with an argument list, never a shell**, with ``-nostdin``,
  ``stdin=DEVNULL`` and a timeout, and the input is always passed as
  ``file:<absolute path>`` (:func:`ffmpeg_input`). File names that start with ``-``,
  contain ``:`` (``concat:``, ``http:`` ...), shell metacharacters, newlines or any
  unicode are therefore just files.
* **Nothing is written to disk.** ``ffmpeg -i`` with no output writes nothing; the
  child's environment is stripped of ``FFREPORT`` (which would make ffmpeg write a log
  file into the working directory) and of ``AV_LOG_FORCE_COLOR`` (colour codes would
  break parsing).
* **ffmpeg's text output is parsed with moviepy's own parser**
  (:class:`moviepy.video.io.ffmpeg_reader.FFmpegInfosParser`), so what :func:`probe`
  reports agrees with what moviepy-based decoders will see. Where that parser is known
  to be wrong or fragile we pre-process its input or parse the extra fields ourselves
  (see :func:`probe`).
"""
from .ffmpeg import FFmpegStream, ffmpeg_exe, ffmpeg_input, run_ffmpeg
from .limits import Limits
from .paths import validate_path
from .probe import MediaInfo, probe

__all__ = [
    "FFmpegStream",
    "Limits",
    "MediaInfo",
    "ffmpeg_exe",
    "ffmpeg_input",
    "probe",
    "run_ffmpeg",
    "validate_path",
]

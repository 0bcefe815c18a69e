"""Running the bundled ffmpeg safely: argument lists, ``file:`` inputs, no shell, timeouts."""
from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Sequence

from ..errors import MediaProcessingError


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary bundled with ``imageio-ffmpeg`` (or ``IMAGEIO_FFMPEG_EXE``).

    Cached: the lookup stats several paths and is done once per process.
    """
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_input(path: str | os.PathLike[str]) -> str:
    """The ffmpeg input argument for ``path``: ``"file:" + absolute path``.

    Why: ffmpeg treats an argument starting with ``-`` as an option, and one containing
    ``:`` before the first ``/`` as a protocol (``concat:``, ``http:``, ``pipe:``...).
    An absolute path always starts with ``/``, and the explicit ``file:`` protocol makes
    ffmpeg open exactly that file with no further interpretation (no image-sequence
    patterns, no protocol guessing). It is passed as one argv element, so shell
    metacharacters, quotes and newlines are inert.
    """
    text = os.fsdecode(path) if isinstance(path, (bytes, bytearray)) else os.fspath(path)
    return "file:" + os.path.abspath(text)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("FFREPORT", None)  # would write ffmpeg-*.log into the working directory
    env.pop("AV_LOG_FORCE_COLOR", None)
    env["AV_LOG_FORCE_NOCOLOR"] = "1"
    return env


def _last_line(data: bytes) -> str:
    for line in reversed(data.decode("utf-8", errors="replace").splitlines()):
        if line.strip():
            line = line.strip()
            return line if len(line) <= 500 else line[:497] + "..."
    return "(no output)"


def run_ffmpeg(
    args: Sequence[str],
    *,
    path: str | os.PathLike[str] | None,
    timeout: float,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``ffmpeg -nostdin -hide_banner *args`` safely and return its output.

    The command is an argument list (never ``shell=True``), stdin is ``/dev/null``
    (ffmpeg would otherwise read keystrokes from a terminal, or hang on a closed one),
    stdout and stderr are captured in memory, and the environment is cleaned so ffmpeg
    writes no report file. ``path`` is only used to label errors. Arguments may hold any
    file name: str arguments reach ffmpeg as the name's original bytes (``os.fsencode``).

    ffmpeg runs in its own session: a Ctrl-C at the terminal interrupts us, not the
    decode in flight (which would otherwise end as a bogus ``decode_failed`` row just as
    a scan writes its last finished lines); if our caller is interrupted, ``subprocess``
    kills the child on the way out.

    Raises :class:`MediaProcessingError`:

    * ``decode_timeout`` when the process runs past ``timeout`` seconds (it is killed
      and reaped first; ``subprocess.run`` does that);
    * ``decode_failed`` when ``check`` is true and ffmpeg exits non-zero; the message
      ends with ffmpeg's last stderr line, which is where it states the reason.
    """
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", *(os.fspath(a) for a in args)]
    try:
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=timeout,
            env=_child_env(),
            check=False,
            shell=False,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired as exc:
        where = f" on {os.fspath(path)}" if path is not None else ""
        raise MediaProcessingError("decode_timeout", f"ffmpeg ran past its {timeout:g} s limit{where}", path=path) from exc
    if check and proc.returncode != 0:
        where = f" on {os.fspath(path)}" if path is not None else ""
        raise MediaProcessingError(
            "decode_failed",
            f"ffmpeg failed{where} (exit {proc.returncode}): {_last_line(proc.stderr)}",
            path=path,
        )
    return proc

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
from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
import stat
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InvalidOptionsError, MediaProcessingError

__all__ = [
    "Limits",
    "MediaInfo",
    "ffmpeg_exe",
    "ffmpeg_input",
    "probe",
    "run_ffmpeg",
    "validate_path",
]

_MIB = 1024 * 1024
_GIB = 1024 * _MIB


# --------------------------------------------------------------------------- limits


@dataclass(frozen=True)
class Limits:
    """Resource caps applied to every input before (and while) it is decoded.

    The caps exist so that one hostile or accidental input (a 200 GB file, a 30-hour
    recording, a 30000x30000 frame, a file that makes a decoder spin) cannot exhaust
    disk, memory or time on a shared machine. ``None`` means "no limit".

    Attributes:
        max_file_bytes: largest accepted file size in bytes (default 20 GiB).
            Checked by :func:`validate_path` from ``stat`` alone, before anything is
            opened. Exceeding it raises ``file_too_large``.
        max_duration_s: longest accepted media duration in seconds (default 4 h).
            Checked by :func:`probe` against the container duration (and, with
            ``exact=True``, the measured stream durations). Files whose duration is
            unknown (raw elementary streams, streamed mkv) cannot be checked here;
            decoders must rely on ``decode_timeout_s``. Raises
            ``duration_exceeds_limit``.
        max_pixels: largest accepted ``width * height`` of the video frame (default
            50 000 000: room for 8K DCI 8192x4320 and large phone photos, while one
            RGB frame stays under 150 MB). Raises ``resolution_exceeds_limit``.
        decode_timeout_s: wall-clock limit, in seconds, for each ffmpeg subprocess
            (default 120). Must be > 0. Exceeding it kills the process and raises
            ``decode_timeout``.

    Environment variables read by :meth:`from_env`:

    ``FORENSICS_MAX_FILE_MB``
        ``max_file_bytes`` in MiB (1 MiB = 1048576 bytes; fractions allowed).
    ``FORENSICS_MAX_DURATION_S``
        ``max_duration_s`` in seconds.
    ``FORENSICS_MAX_PIXELS``
        ``max_pixels`` (width times height).
    ``FORENSICS_DECODE_TIMEOUT_S``
        ``decode_timeout_s`` in seconds; must be > 0 (empty = default).

    For the three ``FORENSICS_MAX_*`` variables, ``0`` or an empty value means no limit;
    an unset variable keeps the default. Anything that is not a non-negative number
    raises :class:`~forensics_core.errors.InvalidOptionsError`.
    """

    max_file_bytes: int | None = 20 * _GIB
    max_duration_s: float | None = 4 * 3600.0
    max_pixels: int | None = 50_000_000
    decode_timeout_s: float = 120.0

    def __post_init__(self) -> None:
        for name in ("max_file_bytes", "max_duration_s", "max_pixels"):
            value = getattr(self, name)
            if value is not None and (not _finite(value) or value < 0):
                raise InvalidOptionsError(f"Limits.{name} must be None or a non-negative number, got {value!r}")
        if not _finite(self.decode_timeout_s) or self.decode_timeout_s <= 0:
            raise InvalidOptionsError(f"Limits.decode_timeout_s must be a positive number, got {self.decode_timeout_s!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """Build limits from the ``FORENSICS_*`` environment variables (see the class docstring).

        ``environ`` defaults to :data:`os.environ`; pass a dict to test or to apply a
        configuration file's values the same way.
        """
        env = os.environ if environ is None else environ
        defaults = cls()

        def cap(var: str, default: float | None, scale: float = 1.0) -> float | None:
            raw = env.get(var)
            if raw is None:
                return default
            raw = raw.strip()
            if raw == "":
                return None
            value = _parse_number(var, raw)
            return None if value == 0 else value * scale

        max_file = cap("FORENSICS_MAX_FILE_MB", defaults.max_file_bytes, _MIB)
        max_dur = cap("FORENSICS_MAX_DURATION_S", defaults.max_duration_s)
        max_pix = cap("FORENSICS_MAX_PIXELS", defaults.max_pixels)
        raw_timeout = (env.get("FORENSICS_DECODE_TIMEOUT_S") or "").strip()
        timeout = defaults.decode_timeout_s
        if raw_timeout:
            timeout = _parse_number("FORENSICS_DECODE_TIMEOUT_S", raw_timeout)
            if timeout <= 0:
                raise InvalidOptionsError(
                    "FORENSICS_DECODE_TIMEOUT_S must be > 0",
                    hint="unset it for the default (120 s), or set a large value such as 86400",
                )
        return cls(
            max_file_bytes=None if max_file is None else int(max_file),
            max_duration_s=max_dur,
            max_pixels=None if max_pix is None else int(max_pix),
            decode_timeout_s=timeout,
        )


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _parse_number(var: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise InvalidOptionsError(f"{var}={raw!r} is not a non-negative number", hint=f"set {var} to a number, or unset it")
    return value


def _limits(limits: Limits | None) -> Limits:
    return Limits.from_env() if limits is None else limits


# --------------------------------------------------------------------------- validate_path


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def validate_path(path: str | os.PathLike[str], limits: Limits | None = None) -> Path:
    """Check that ``path`` is a readable, non-empty regular file within the size cap.

    Returns the absolute path with symlinks resolved (so later error messages and
    ffmpeg see the real file). Nothing is decoded and nothing but the first byte is
    read, so this is safe on any input; in particular a FIFO or device is rejected from
    ``stat`` alone and never opened (opening a FIFO would block forever).

    Raises :class:`MediaProcessingError` with code:

    * ``file_not_found``: the path (or a component of it) does not exist, is a dangling
      symlink or symlink loop, or is not a valid path at all (empty, NUL byte, too long).
    * ``not_a_file``: a directory, FIFO, socket or device.
    * ``empty_file``: zero bytes.
    * ``unreadable``: ``stat`` or ``open`` is refused (permissions), or reading fails.
    * ``file_too_large``: larger than ``limits.max_file_bytes``.

    ``limits`` defaults to :meth:`Limits.from_env`.
    """
    lim = _limits(limits)
    raw = os.fsdecode(path) if isinstance(path, (bytes, bytearray)) else path
    try:
        text = os.fspath(raw)
    except TypeError as exc:
        raise MediaProcessingError("file_not_found", f"not a path: {path!r}") from exc
    if text == "" or "\0" in text:
        raise MediaProcessingError("file_not_found", f"not a valid path: {text!r}", path=None)
    try:
        resolved = Path(os.path.abspath(text)).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: symlink loop (Python < 3.13)
        raise MediaProcessingError("file_not_found", f"cannot resolve {text!r}: {exc}", path=text) from exc
    try:
        st = os.stat(resolved)
    except PermissionError as exc:
        raise MediaProcessingError("unreadable", f"permission denied while looking up {resolved}", path=resolved) from exc
    except (OSError, ValueError) as exc:  # ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG ...
        raise MediaProcessingError("file_not_found", f"no such file: {resolved}", path=resolved) from exc
    if not stat.S_ISREG(st.st_mode):
        raise MediaProcessingError("not_a_file", f"{resolved} is {_kind(st.st_mode)}, not a media file", path=resolved)
    if st.st_size == 0:
        raise MediaProcessingError("empty_file", f"{resolved} is empty (0 bytes)", path=resolved)
    if not os.access(resolved, os.R_OK):
        raise MediaProcessingError("unreadable", f"{resolved} is not readable by this user", path=resolved)
    try:
        # O_NONBLOCK: if the file was swapped for a FIFO since stat(), open must not hang.
        fd = os.open(resolved, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        try:
            os.read(fd, 1)
        finally:
            os.close(fd)
    except OSError as exc:
        raise MediaProcessingError("unreadable", f"cannot read {resolved}: {exc.strerror or exc}", path=resolved) from exc
    if lim.max_file_bytes is not None and st.st_size > lim.max_file_bytes:
        raise MediaProcessingError(
            "file_too_large",
            f"{resolved} is {st.st_size} bytes, over the limit of {lim.max_file_bytes} bytes",
            path=resolved,
        )
    return resolved


# --------------------------------------------------------------------------- ffmpeg


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
    writes no report file. ``path`` is only used to label errors.

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


# --------------------------------------------------------------------------- MediaInfo


@dataclass(frozen=True)
class MediaInfo:
    """What :func:`probe` learned about a media file from its headers.

    Attributes:
        path: absolute, resolved path.
        size_bytes: file size.
        format_name: ffmpeg's demuxer name, e.g. ``"mov,mp4,m4a,3gp,3g2,mj2"``,
            ``"matroska,webm"``, ``"png_pipe"``.
        has_video, has_audio: a video / audio stream exists. Cover art ("attached
            pic") is not video.
        width, height: coded size of the default video stream (before rotation; see
            ``rotation``).
        fps: the video stream's average frame rate as ffmpeg reports it (for variable
            frame rate video, the average). ``None`` for audio and still images.
        frame_count: estimated as ``int(duration * fps)``, exactly as moviepy does, so
            it is what moviepy-based decoders will expect (but at least 1). It uses the
            *container* duration, so it is too high when the video stream is shorter
            than the audio. ``None`` when the duration is unknown. 1 for a still image. With
            ``probe(exact=True)`` it is the real number of video packets.
        duration: container duration in seconds (the longest stream), ``None`` when the
            container does not state it (raw ``.h264``, streamed mkv, images).
        rotation: clockwise degrees (0, 90, 180, 270) to rotate the stored frame for
            display, i.e. the legacy ``rotate`` tag convention (portrait phone video is
            usually 90). ffmpeg applies it automatically when decoding, so decoded
            frames are ``height x width`` when rotation is 90 or 270.
        video_codec, audio_codec: ffmpeg codec names (``h264``, ``aac``, ``pcm_s16le``).
        pix_fmt: pixel format of the video stream (``yuv420p``, ``yuv420p10le``).
        audio_sample_rate: Hz. audio_channels: from the channel layout ffmpeg prints
            (``mono`` 1, ``stereo`` 2, ``5.1`` 6, ``N channels`` N ...).
        still_image: the file is a single image (png, jpeg, ... demuxed by an image
            demuxer). Counted as video with ``frame_count`` 1 and no duration/fps, so a
            video detector reports ``too_short`` rather than ``no_video_stream``.
        exact: ``True`` when produced by ``probe(exact=True)``: then ``frame_count`` is
            counted and ``video_duration`` / ``audio_duration`` are measured from packet
            timestamps (without decoding). Otherwise those two are ``None``.
    """

    path: Path
    size_bytes: int
    format_name: str | None
    has_video: bool
    has_audio: bool
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    frame_count: int | None = None
    duration: float | None = None
    rotation: int = 0
    video_codec: str | None = None
    audio_codec: str | None = None
    audio_sample_rate: int | None = None
    audio_channels: int | None = None
    pix_fmt: str | None = None
    still_image: bool = False
    exact: bool = False
    video_duration: float | None = None
    audio_duration: float | None = None

    @property
    def modalities(self) -> frozenset[str]:
        """``{"video"}``, ``{"audio"}`` or both: what a detector can work with."""
        return frozenset(m for m, present in (("video", self.has_video), ("audio", self.has_audio)) if present)

    @property
    def display_size(self) -> tuple[int, int] | None:
        """(width, height) after applying ``rotation``: the size of decoded frames."""
        if self.width is None or self.height is None:
            return None
        if self.rotation in (90, 270):
            return (self.height, self.width)
        return (self.width, self.height)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (path as str, modalities as a sorted list, no NaN/inf)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = os.fspath(value)
            elif isinstance(value, float) and not math.isfinite(value):
                value = None
            out[f.name] = value
        out["modalities"] = sorted(self.modalities)
        return out


# --------------------------------------------------------------------------- probe helpers

_PLACEHOLDER = b"file:INPUT"
#: ffmpeg >= 5 prints streams indented by two spaces, ffmpeg 4 by four (after ``Duration:``)
_STREAM_RE = re.compile(r"^ {2}(?: {2})?Stream #(\d+):(\d+)(?:\[[^\]]*\])?(?:\(([^)]*)\))?: (\w+): ?(.*)$")
_INPUT_RE = re.compile(r"^Input #0, (.+?), from '")
_PROBE_SCORE_RE = re.compile(r"Format (\S+) probed with size=\d+ and score=(\d+)")
_LOW_SCORE_RE = re.compile(r"Format (\S+) detected only with low score of (\d+)")
_ROTATION_RE = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees")
_ROTATE_TAG_RE = re.compile(r"^\s+rotate\s*:\s*(-?\d+(?:\.\d+)?)\s*$", re.M)
# Demuxers that read exactly one picture from the file (image2 and the *_pipe family).
_IMAGE_FORMATS = ("image2", "_pipe")

_NAMED_LAYOUTS = {
    "mono": 1,
    "stereo": 2,
    "downmix": 2,
    "binaural": 2,
    "quad": 4,
    "hexagonal": 6,
    "octagonal": 8,
    "cube": 8,
    "hexadecagonal": 16,
}


def _channels(layout: str) -> int | None:
    """Channel count from ffmpeg's layout text: ``mono``, ``5.1(side)``, ``7.1.4``, ``6 channels``."""
    layout = layout.strip()
    m = re.match(r"(\d+) channels\b", layout)
    if m:
        return int(m.group(1))
    name = layout.split("(", 1)[0].strip()
    if name in _NAMED_LAYOUTS:
        return _NAMED_LAYOUTS[name]
    if re.fullmatch(r"\d+(\.\d+){1,2}", name):  # 2.1, 5.1, 7.1, 5.1.2, 22.2 ...: sum of the parts
        return sum(int(p) for p in name.split("."))
    return None


def _split_top(text: str) -> list[str]:
    """Split an ffmpeg stream description at commas that are not inside parentheses/brackets."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur).strip())
    return parts


@dataclass
class _Stream:
    index: int
    kind: str  # "Video", "Audio", "Subtitle", "Data", "Attachment", ...
    desc: str  # text after "Video: "
    lines: list[str]  # the stream line and its indented block

    @property
    def attached_pic(self) -> bool:
        return "(attached pic)" in self.lines[0]

    @property
    def codec(self) -> str | None:
        m = re.match(r"(\w+)", self.desc)
        return m.group(1) if m else None


def _input_section(text: str) -> tuple[str | None, list[str]]:
    """Return (format_name, lines of the ``Input #0`` section, header line included)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = _INPUT_RE.match(line)
        if m:
            section = [line]
            for rest in lines[i + 1 :]:
                if rest and not rest.startswith(" "):
                    break  # "At least one output file must be specified", log lines ...
                if rest.strip():
                    section.append(rest)
            return m.group(1), section
    return None, []


def _streams(section: list[str]) -> tuple[list[str], list[_Stream]]:
    """Split the ``Input #0`` section into header lines and top-level stream blocks.

    Top-level entries are indented by exactly two spaces; each stream's metadata and
    side data follow, indented deeper (so text inside a metadata value can never pose as
    a stream). Two kinds of block are dropped because moviepy's parser crashes on them
    and we need nothing from them:

    * stream groups (ffmpeg >= 7: ``Stream group #0:0: Tile Grid`` for HEIF); their
      member streams are listed again at the top level;
    * ``Chapters:``: with exactly one chapter moviepy 2.x raises ``IndexError``.
    """
    head: list[str] = section[:1]
    streams: list[_Stream] = []
    current: list[str] | None = None
    skipping = False
    for line in section[1:]:
        m = _STREAM_RE.match(line)
        if m:  # a stream starts a block at any of the two indentations
            current, skipping = [line], False
            streams.append(_Stream(int(m.group(2)), m.group(4), m.group(5), current))
            continue
        if line.startswith("  ") and not line.startswith("   "):
            current, skipping = None, False
            if line.startswith("  Stream group") or line.startswith("  Chapters:"):
                skipping = True
                continue
            head.append(line)
        elif skipping:
            continue
        elif current is not None:
            current.append(line)
        else:
            head.append(line)
    return head, streams


def _classify_open_failure(p: Path, stderr: str, debug: str) -> MediaProcessingError:
    """ffmpeg printed no ``Input #0``: decide why.

    ``unsupported_format`` when no demuxer recognised the content (only the file
    extension matched, which ffmpeg reports as "detected only with low score", or
    nothing matched at all); ``decode_failed`` when a demuxer recognised the content
    (probe score above the extension-only score) but could not open it: a truncated mp4
    without its ``moov`` atom, a webm cut inside its header. The distinction picks the
    right hint: convert the file vs. fetch or repair it.
    """
    last = _last_line(stderr.encode())
    low = stderr.lower()
    if "permission denied" in low:
        return MediaProcessingError("unreadable", f"ffmpeg may not read {p}: {last}", path=p)
    if "no such file or directory" in low:
        return MediaProcessingError("file_not_found", f"{p} disappeared before ffmpeg opened it", path=p)
    if "is a directory" in low:
        return MediaProcessingError("not_a_file", f"{p} is a directory", path=p)
    recognised = [(fmt, int(score)) for fmt, score in _PROBE_SCORE_RE.findall(debug) if int(score) > 50]
    if recognised and not _LOW_SCORE_RE.search(stderr):
        details = [ln.split("] ", 1)[1] for ln in stderr.splitlines() if ln.startswith("[") and "] " in ln]
        details = [d for d in details if not d.startswith("Error opening input")] or [last]
        return MediaProcessingError(
            "decode_failed",
            f"{p} looks like {recognised[0][0]} but is damaged or truncated: {'; '.join(details)[:500]}",
            path=p,
        )
    return MediaProcessingError("unsupported_format", f"no demuxer recognises {p} as audio or video ({last})", path=p)


def _measure(
    p: Path, video: _Stream | None, audio: _Stream | None, timeout: float, start: float | None
) -> dict[str, Any]:
    """Demux (no decoding) every packet of the chosen streams; count and time them.

    Uses ffmpeg's ``framecrc`` muxer on stdout with ``-c copy``: one text line per packet
    with its stream, dts, pts and duration. This reads the whole file but decodes
    nothing, so it is I/O bound. A stream's duration runs from its first timestamp to
    the end of its last packet; timestamps before the container's ``start`` (AAC/Opus
    encoder priming, which players skip) are not counted.
    """
    maps: list[str] = []
    chosen = [s for s in (video, audio) if s is not None]
    for s in chosen:
        maps += ["-map", f"0:{s.index}"]
    proc = run_ffmpeg(
        ["-v", "error", "-i", ffmpeg_input(p), *maps, "-c", "copy", "-f", "framecrc", "-"],
        path=p,
        timeout=timeout,
        check=True,
    )
    tbs: dict[int, float] = {}
    spans: dict[int, list[float]] = {}
    counts: dict[int, int] = {}
    nopts = -(2**63)
    for raw in proc.stdout.decode("ascii", errors="replace").splitlines():
        if raw.startswith("#tb "):
            m = re.match(r"#tb (\d+): (\d+)/(\d+)", raw)
            if m:
                tbs[int(m.group(1))] = int(m.group(2)) / int(m.group(3))
            continue
        if not raw or raw.startswith("#"):
            continue
        fields = [f.strip() for f in raw.split(",")]
        try:
            idx, dts, pts, dur = int(fields[0]), int(fields[1]), int(fields[2]), int(fields[3])
        except (ValueError, IndexError):
            continue
        ts = pts if pts != nopts else dts
        if ts == nopts:
            continue
        tb = tbs.get(idx, 0.0)
        t0, t1 = ts * tb, (ts + max(dur, 0)) * tb
        span = spans.setdefault(idx, [t0, t1])
        span[0], span[1] = min(span[0], t0), max(span[1], t1)
        counts[idx] = counts.get(idx, 0) + 1
    out: dict[str, Any] = {"exact": True}
    for out_idx, s in enumerate(chosen):
        dur = 0.0
        if out_idx in spans:
            lo, hi = spans[out_idx]
            if start is not None:
                lo = max(lo, start)
            dur = round(max(0.0, hi - lo), 6)
        if s is video:
            out["frame_count"] = counts.get(out_idx, 0)
            out["video_duration"] = dur
        else:
            out["audio_duration"] = dur
    return out


def _check_limits(p: Path, lim: Limits, width: int | None, height: int | None, durations: list[float | None]) -> None:
    known = [d for d in durations if d is not None]
    if lim.max_duration_s is not None and known and max(known) > lim.max_duration_s:
        raise MediaProcessingError(
            "duration_exceeds_limit",
            f"{p} lasts {max(known):.1f} s, over the limit of {lim.max_duration_s:g} s",
            path=p,
        )
    if lim.max_pixels is not None and width and height and width * height > lim.max_pixels:
        raise MediaProcessingError(
            "resolution_exceeds_limit",
            f"{p} is {width}x{height} ({width * height} pixels), over the limit of {lim.max_pixels} pixels",
            path=p,
        )


# --------------------------------------------------------------------------- probe


def probe(path: str | os.PathLike[str], *, limits: Limits | None = None, exact: bool = False) -> MediaInfo:
    """Validate ``path`` and read its stream layout from the headers (no decoding).

    Steps and why:

    1. :func:`validate_path` (missing, directory, empty, unreadable, too large) so that
       ffmpeg never sees a FIFO, a device or a 200 GB file.
    2. ``ffmpeg -i file:PATH`` via :func:`run_ffmpeg` (``limits.decode_timeout_s``).
       The input string is replaced by a placeholder in ffmpeg's output before parsing,
       so a file name containing newlines cannot inject fake ``Duration:`` or
       ``Stream`` lines.
    3. No ``Input #0`` section means ffmpeg could not open the file. It is run once
       more with ``-v debug`` to read the demuxer's probe score, and the failure is
       ``unsupported_format`` (nothing recognised the content, e.g. text or random
       bytes renamed ``.mp4``) or ``decode_failed`` (a recognised but damaged
       container, e.g. an mp4 cut before its ``moov`` atom); see
       :func:`_classify_open_failure`.
    4. The section is parsed with moviepy's ``FFmpegInfosParser`` after removing what it
       mishandles: cover art ("attached pic", which moviepy counts as video), stream
       groups (HEIF tiles, on which its regex crashes) and blank lines. A ``Duration:
       N/A`` container is parsed with ``check_duration=False`` (moviepy would raise);
       its duration and frame count are then ``None``. Any parser exception becomes
       ``decode_failed`` chained to it. Codec names, pixel format, channel count and
       rotation are read from the stream lines here, because moviepy does not return
       them; it also misses the rotation printed by newer ffmpeg (the bundled 9.x) as
       a ``Side data:`` / ``Display Matrix: rotation of -90.00 degrees`` block.
    5. A file with no audio and no video stream (subtitles only, data only) is
       ``unsupported_format``.
    6. A single image (image2 / ``*_pipe`` demuxers) is reported as video with
       ``still_image=True``, ``frame_count`` 1, ``fps`` and ``duration`` ``None``.
    7. With ``exact=True``, every packet of the default video/audio stream is demuxed
       (not decoded) to count frames and measure each stream's duration: slower
       (reads the whole file) but catches audio much shorter than video, or the
       reverse, which container headers hide.
    8. Limits: ``duration_exceeds_limit`` and ``resolution_exceeds_limit``.

    ``limits`` defaults to :meth:`Limits.from_env`.
    """
    lim = _limits(limits)
    p = validate_path(path, lim)
    try:
        size = p.stat().st_size
    except OSError as exc:  # removed since validate_path
        raise MediaProcessingError("file_not_found", f"{p} disappeared while being probed", path=p) from exc
    arg = ffmpeg_input(p)
    proc = run_ffmpeg(["-i", arg], path=p, timeout=lim.decode_timeout_s, check=False)
    stderr = proc.stderr.replace(os.fsencode(arg), _PLACEHOLDER).decode("utf-8", errors="replace")

    format_name, section = _input_section(stderr)
    if not section:
        debug = run_ffmpeg(["-v", "debug", "-i", arg], path=p, timeout=lim.decode_timeout_s, check=False)
        debug_text = debug.stderr.replace(os.fsencode(arg), _PLACEHOLDER).decode("utf-8", errors="replace")
        raise _classify_open_failure(p, stderr, debug_text)

    head, streams = _streams(section)
    kept = [s for s in streams if not s.attached_pic]
    if not any(s.kind in ("Video", "Audio") for s in kept):
        kinds = ", ".join(sorted({s.kind.lower() + (" (cover art)" if s.attached_pic else "") for s in streams})) or "none"
        raise MediaProcessingError(
            "unsupported_format",
            f"{p} ({format_name}) has no audio or video stream (streams: {kinds})",
            path=p,
        )

    duration_known = not any(ln.lstrip().startswith("Duration: N/A") for ln in head)
    text = "\n".join(head + [ln for s in kept for ln in s.lines])
    try:
        import warnings

        from moviepy.video.io.ffmpeg_reader import FFmpegInfosParser

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Subtitle stream parsing is not supported"
            info = FFmpegInfosParser(text, os.fspath(p), check_duration=duration_known).parse()
    except Exception as exc:  # noqa: BLE001 - any parser failure means the output is not what a decoder expects
        raise MediaProcessingError(
            "decode_failed", f"could not parse ffmpeg's description of {p}: {type(exc).__name__}: {exc}", path=p
        ) from exc

    by_index = {s.index: s for s in kept}
    video = by_index.get(info.get("default_video_stream_number", -1)) if info.get("video_found") else None
    audio = by_index.get(info.get("default_audio_stream_number", -1)) if info.get("audio_found") else None
    still = (
        video is not None
        and audio is None
        and format_name is not None
        and any(format_name == f or (f.startswith("_") and format_name.endswith(f)) for f in _IMAGE_FORMATS)
    )

    fields: dict[str, Any] = {
        "path": p,
        "size_bytes": size,
        "format_name": format_name,
        "has_video": video is not None,
        "has_audio": audio is not None,
        "duration": float(info["duration"]) if duration_known and info.get("duration") is not None else None,
        "still_image": still,
    }
    if video is not None:
        parts = _split_top(video.desc)
        size_wh = info.get("video_size")
        if size_wh:
            fields["width"], fields["height"] = int(size_wh[0]), int(size_wh[1])
        fields["video_codec"] = info.get("video_codec_name") or video.codec
        for part in parts[1:]:
            if re.match(r"\d+x\d+", part):
                break
            m = re.match(r"([a-z][a-z0-9_]*)(\(|$)", part)
            if m and m.group(1) != "none":
                fields["pix_fmt"] = m.group(1)
                break
        block = "\n".join(video.lines)
        m = _ROTATION_RE.search(block)
        if m:
            fields["rotation"] = int(round(-float(m.group(1)))) % 360
        else:
            m = _ROTATE_TAG_RE.search(block)
            if m:
                fields["rotation"] = int(round(float(m.group(1)))) % 360
        if still:
            fields["frame_count"] = 1
            fields["duration"] = None  # image2 reports one frame's worth (0.04 s); it has none
        else:
            fps = info.get("video_fps")
            fields["fps"] = float(fps) if _finite(fps) and fps > 0 else None
            if fields["duration"] is not None and fields["fps"] is not None:
                # at least 1: a video stream has a frame even if duration * fps < 1
                fields["frame_count"] = max(1, int(info.get("video_n_frames") or 0))
    if audio is not None:
        fields["audio_codec"] = audio.codec
        rate = info.get("audio_fps")
        fields["audio_sample_rate"] = int(rate) if isinstance(rate, int) else None
        parts = _split_top(audio.desc)
        for i, part in enumerate(parts):
            if part.endswith(" Hz") and i + 1 < len(parts):
                fields["audio_channels"] = _channels(parts[i + 1])
                break

    _check_limits(p, lim, fields.get("width"), fields.get("height"), [fields["duration"]])
    if exact:
        start = info.get("start")
        fields.update(_measure(p, video, audio, lim.decode_timeout_s, start if isinstance(start, float) else None))
        if still:
            fields["frame_count"], fields["video_duration"] = 1, None
        _check_limits(p, lim, None, None, [fields.get("video_duration"), fields.get("audio_duration")])
    result = MediaInfo(**fields)
    return result

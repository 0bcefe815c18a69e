"""Paths: the checks every detector runs before decoding, and bytes-safe names end to end.

A POSIX file name is bytes. Python hands undecodable bytes around as lone surrogates
(``surrogateescape``), which the standard library accepts for ``open``/``stat`` and
subprocess arguments, but which OpenCV cannot take (it segfaults converting them) and
which UTF-8 JSON cannot hold. So:

* decoders never see the user's name: :func:`open_for_decoder` opens the file once and
  hands them ``/proc/self/fd/N``, an ASCII path to the very file that was validated
  (nothing is written anywhere, and the file cannot be swapped underneath);
* rows carry the name twice when it is not UTF-8: :func:`display_path` (readable and
  valid UTF-8, each undecodable byte written ``\\xNN``) and :func:`path_bytes_b64`
  (the exact bytes, base64), which :func:`path_from_fields` turns back into the path;
* every path is reported in one form, :func:`canonical_path` (absolute, symlinks
  resolved where they resolve), on ok, abstained and error rows alike.
"""
from __future__ import annotations

import base64
import errno
import os
import re
import stat
from pathlib import Path

from ..errors import MediaProcessingError
from .limits import Limits, _limits

_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_FD_DIR = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"


# --------------------------------------------------------------------------- names
def _text(path: str | bytes | os.PathLike) -> str:
    raw = os.fspath(path)
    return os.fsdecode(raw) if isinstance(raw, bytes) else raw


def canonical_path(path: str | bytes | os.PathLike) -> str:
    """The one form a path takes in results: absolute, with symlinks resolved where they resolve.

    Never raises: a dangling link, a symlink loop or a missing file gives the absolute
    path as far as it resolves (``os.path.realpath``, non-strict).
    """
    text = _text(path)
    try:
        return os.path.realpath(os.path.abspath(text))
    except (OSError, ValueError):  # NUL bytes, names too long
        return os.path.abspath(text) if "\0" not in text else text


def display_path(path: str | bytes | os.PathLike) -> str:
    """A valid-UTF-8 rendering of ``path``: bytes that are not UTF-8 become ``\\xNN``.

    Equal to the path itself for every UTF-8 name (nearly all of them). Lossy for the
    rest (``\\xff`` could also be four literal characters): see :func:`path_bytes_b64`.
    """
    text = _text(path)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return clean_text(text)


def path_bytes_b64(path: str | bytes | os.PathLike) -> str | None:
    """The name's exact bytes in base64 when it is not valid UTF-8, else ``None``."""
    text = _text(path)
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError:
        return base64.b64encode(os.fsencode(text)).decode("ascii")


def path_from_fields(shown: str, raw_b64: str | None) -> str:
    """Inverse of (:func:`display_path`, :func:`path_bytes_b64`): the path to open."""
    if raw_b64:
        return os.fsdecode(base64.b64decode(raw_b64))
    return shown


def clean_text(text: str) -> str:
    """``text`` with lone surrogates (undecodable name bytes) written as ``\\xNN``: always valid UTF-8."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # surrogates that did not come from a file name
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def looks_like_url(text: str) -> bool:
    """``https://...``, ``s3://...``: something a user may pass expecting it to be fetched."""
    return bool(_URL_RE.match(text))


# --------------------------------------------------------------------------- checks
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

    Returns :func:`canonical_path` (absolute, symlinks resolved), so later error
    messages and ffmpeg see the real file. Nothing is decoded and nothing but the first
    byte is read, so this is safe on any input; in particular a FIFO or device is
    rejected from ``stat`` alone and never opened (opening a FIFO would block forever).

    Raises :class:`MediaProcessingError` with code:

    * ``file_not_found``: the path (or a component of it) does not exist, is a dangling
      symlink or symlink loop, is not a valid path at all (empty, NUL byte, too long),
      or is a URL (media is never downloaded; the hint says so).
    * ``not_a_file``: a directory, FIFO, socket or device.
    * ``empty_file``: zero bytes.
    * ``unreadable``: ``stat`` or ``open`` is refused (permissions), or reading fails.
    * ``file_too_large``: larger than ``limits.max_file_bytes``.

    ``limits`` defaults to :meth:`Limits.from_env`.
    """
    lim = _limits(limits)
    try:
        text = _text(path)
    except TypeError as exc:
        raise MediaProcessingError("file_not_found", f"not a path: {path!r}") from exc
    if text == "" or "\0" in text:
        raise MediaProcessingError("file_not_found", f"not a valid path: {display_path(text)!r}", path=None)
    resolved = Path(canonical_path(text))
    shown = display_path(resolved)
    try:
        st = os.stat(resolved)
    except PermissionError as exc:
        raise MediaProcessingError("unreadable", f"permission denied while looking up {shown}", path=resolved) from exc
    except (OSError, ValueError) as exc:  # ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG ...
        if looks_like_url(text):
            raise MediaProcessingError(
                "file_not_found", f"{display_path(text)} is a URL; forensics reads local files only",
                hint="Media is never downloaded: fetch the file first (e.g. `curl -LO URL`) and pass its local path.",
                path=text) from exc
        if getattr(exc, "errno", None) == errno.ELOOP:
            raise MediaProcessingError("file_not_found", f"{shown} is a symlink loop", path=resolved) from exc
        raise MediaProcessingError("file_not_found", f"no such file: {shown}", path=resolved) from exc
    if not stat.S_ISREG(st.st_mode):
        raise MediaProcessingError("not_a_file", f"{shown} is {_kind(st.st_mode)}, not a media file", path=resolved)
    if st.st_size == 0:
        raise MediaProcessingError("empty_file", f"{shown} is empty (0 bytes)", path=resolved)
    try:
        # O_NONBLOCK: if the file was swapped for a FIFO since stat(), open must not hang.
        # Not os.access(): it answers "yes" to root whatever the permissions (and the file).
        fd = os.open(resolved, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        try:
            os.read(fd, 1)
        finally:
            os.close(fd)
    except OSError as exc:
        raise MediaProcessingError("unreadable", f"cannot read {shown}: {exc.strerror or exc}", path=resolved) from exc
    if lim.max_file_bytes is not None and st.st_size > lim.max_file_bytes:
        raise MediaProcessingError(
            "file_too_large",
            f"{shown} is {st.st_size} bytes, over the limit of {lim.max_file_bytes} bytes",
            path=resolved,
        )
    return resolved


# --------------------------------------------------------------------------- decoders
class DecoderPath:
    """A read-only descriptor on a media file and ``path``, a name for it any decoder accepts.

    ``path`` is ``/proc/self/fd/N``: ASCII whatever the file's own name (OpenCV segfaults
    on names that are not UTF-8), and it reaches exactly the file that was opened, even if
    the name is renamed or replaced meanwhile. Opening it gives the decoder its own file
    offset, so several decoders may use one ``DecoderPath``. The descriptor is close-on-exec
    and is closed by :meth:`close` (or the ``with`` block). Nothing is written anywhere.
    """

    def __init__(self, path: str | bytes | os.PathLike):
        self.source = _text(path)
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            self.fd: int | None = os.open(self.source, flags)
        except FileNotFoundError as exc:
            raise MediaProcessingError("file_not_found", f"{display_path(self.source)} disappeared before it was decoded", path=self.source) from exc
        except OSError as exc:
            raise MediaProcessingError("unreadable", f"cannot open {display_path(self.source)}: {exc.strerror or exc}", path=self.source) from exc
        st = os.fstat(self.fd)
        if not stat.S_ISREG(st.st_mode):  # swapped for a FIFO or device since validate_path
            os.close(self.fd)
            self.fd = None
            raise MediaProcessingError("not_a_file", f"{display_path(self.source)} is {_kind(st.st_mode)}, not a media file", path=self.source)
        self.path = f"{_FD_DIR}/{self.fd}"

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> DecoderPath:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # a reader dropped without close() must not leak the descriptor
        try:
            self.close()
        except OSError:
            pass


def open_for_decoder(path: str | bytes | os.PathLike) -> DecoderPath:
    """Open ``path`` for a decoder library: use ``.path`` where it wants a file name, then close it.

    The one way every in-process decoder (OpenCV, soundfile/librosa, PyAV ...) opens media::

        with open_for_decoder(path) as src:
            cap = cv2.VideoCapture(src.path, cv2.CAP_FFMPEG)

    ffmpeg subprocesses need no such help: their arguments are passed as bytes
    (:func:`~forensics_core.media.ffmpeg.ffmpeg_input`).
    """
    return DecoderPath(path)

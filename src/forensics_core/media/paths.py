"""Path checks every detector runs before anything is decoded (cheap ``stat``/``open``)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import MediaProcessingError
from .limits import Limits, _limits


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

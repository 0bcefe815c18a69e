"""One output file, one writer: an exclusive lock held for the whole of a scan.

Two scans appending to one JSONL would interleave and lose lines, and the resume
compaction (a rewrite then a rename) would leave the other writer appending to a
file that is no longer the output. So a scan takes ``fcntl.flock`` on a lock file
beside its output (``.NAME.lock``) before it reads or touches the output, never waits
for it, and a second scan on the same output stops at once with
:class:`~forensics_core.errors.OutputLockedError` (exit code 5).

The lock file is removed when the scan ends. A scan killed outright leaves it behind,
harmless: the kernel released the lock with the process, and the next scan takes it.
Removing a lock file races with a process that opened it just before: so after taking
the lock, a scan checks that the name still leads to the file it locked, and retries
if not.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import OutputLockedError
from ..media.paths import display_path


def lock_path(output: Path) -> Path:
    return output.with_name(f".{output.name}.lock")


class OutputLock:
    """``with OutputLock(output):`` holds the output's lock (non-blocking: refuses if another process has it)."""

    def __init__(self, output: str | os.PathLike):
        self.output = Path(output)
        self.path = lock_path(self.output)
        self.fd: int | None = None

    def acquire(self) -> OutputLock:
        import fcntl

        for _ in range(10):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise OutputLockedError(
                    f"another scan{holder} is writing {display_path(self.output)}",
                    hint="wait for it to finish (rerunning then resumes), or pass another --output",
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self.fd = fd
                return self
            os.close(fd)  # the previous holder removed the file we locked: take the new one
        raise OutputLockedError(f"could not take the lock on {display_path(self.output)}",
                                hint=f"remove {display_path(self.path)} if no scan is running")

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.unlink(self.path)  # while still holding it: a newcomer that opened it re-checks the name
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (process {pid})" if pid.isdigit() else ""

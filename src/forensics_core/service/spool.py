"""The spool: the one folder where uploads (and the reports made from them) live.

Rules that keep a hostile upload harmless:

* **Client file names never become paths.** A stored file is named by the spool
  (32 random hex digits and an extension from a fixed list of media extensions);
  the client's name is kept only as display text (:func:`display_name`), so
  ``../../x``, ``/etc/passwd`` or a name with NUL bytes lands in the spool like any
  other upload. Files are created with ``O_EXCL | O_NOFOLLOW``, mode 0600.
* **Bounded.** Each upload is capped (``upload_cap``) and all files together are
  held under a quota; a write that would cross either stops at once.
* **Nothing stays behind.** An upload is written to a ``.part`` file and renamed
  when complete; an aborted one is deleted, and housekeeping deletes any file no
  job refers to. Nothing is written to ``$TMPDIR``.
"""
from __future__ import annotations

import os
import re
import time
import unicodedata
import uuid
from pathlib import Path

from ..batch.scan import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS

_NAME_RE = re.compile(r"^[0-9a-f]{32}\.(?:[a-z0-9]{1,5}|html)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class SpoolLimit(Exception):
    """An upload crossed a limit: ``kind`` is ``too_large`` (the per-upload cap) or ``quota`` (the spool's)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def display_name(client_name: str | None) -> str:
    """What the client called the file, safe to show and log: its last component, no control characters."""
    name = unicodedata.normalize("NFC", client_name or "")
    name = re.split(r"[/\\]", name)[-1]
    name = _CONTROL.sub("", name).strip()
    if name in ("", ".", ".."):
        name = "upload"
    return name[:200]


def stored_extension(client_name: str | None) -> str:
    """A known media extension of the client's name, else ``bin`` (ffmpeg reads content, not names)."""
    ext = display_name(client_name).rpartition(".")[2].lower()
    return ext if ext in VIDEO_EXTENSIONS | AUDIO_EXTENSIONS else "bin"


class SpoolWriter:
    """One upload being written; ``commit`` makes it visible, ``abort`` removes it."""

    def __init__(self, spool: Spool, client_name: str | None, cap: int):
        self.spool, self.cap = spool, cap
        self.name = f"{uuid.uuid4().hex}.{stored_extension(client_name)}"
        self.part = spool.uploads / (self.name + ".part")
        self.budget = spool.quota - spool.usage()
        self.size = 0
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        self.fh = os.fdopen(os.open(self.part, flags, 0o600), "wb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.cap:
            raise SpoolLimit("too_large", f"the upload is larger than the limit of {self.cap} bytes")
        if self.size > self.budget:
            raise SpoolLimit("quota", "the spool is full (its quota is reached)")
        self.fh.write(chunk)

    def commit(self) -> Path:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        final = self.spool.uploads / self.name
        os.replace(self.part, final)
        return final

    def abort(self) -> None:
        if not self.fh.closed:
            self.fh.close()
        self.part.unlink(missing_ok=True)


class Spool:
    def __init__(self, root: str | os.PathLike, quota: int):
        self.root = Path(root)
        self.uploads = self.root / "uploads"
        self.reports = self.root / "reports"
        self.quota = quota
        for folder in (self.root, self.uploads, self.reports):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def usage(self) -> int:
        """Bytes held by every file in the spool, uploads being written included."""
        total = 0
        for folder in (self.uploads, self.reports):
            with os.scandir(folder) as it:
                for entry in it:
                    try:
                        total += entry.stat(follow_symlinks=False).st_size
                    except FileNotFoundError:
                        pass
        return total

    def writer(self, client_name: str | None, cap: int) -> SpoolWriter:
        return SpoolWriter(self, client_name, cap)

    def upload_path(self, name: str) -> Path:
        """The path of a stored upload; ``name`` must be one the spool made (never a client's)."""
        if not _NAME_RE.match(name):
            raise ValueError(f"not a spool name: {name!r}")
        return self.uploads / name

    def report_path(self, name: str) -> Path:
        if not _NAME_RE.match(name):
            raise ValueError(f"not a spool name: {name!r}")
        return self.reports / name

    def write_report(self, job_id: str, html: str) -> str:
        """Store a job's HTML report (atomically); returns its spool name."""
        name = f"{job_id}.html"
        final = self.report_path(name)
        part = final.with_name(name + ".part")
        part.write_text(html, encoding="utf-8")
        os.replace(part, final)
        return name

    def remove(self, *names: str | None) -> None:
        for name in names:
            if name:
                for folder in (self.uploads, self.reports):
                    (folder / name).unlink(missing_ok=True) if _NAME_RE.match(name) else None

    def sweep(self, in_use: set[str], grace_s: float = 3600.0) -> int:
        """Delete files no job refers to (crashed uploads, a worker killed before its cleanup)."""
        cutoff, removed = time.time() - grace_s, 0
        for folder in (self.uploads, self.reports):
            with os.scandir(folder) as it:
                for entry in it:
                    name = entry.name.removesuffix(".part")
                    try:
                        old = entry.stat(follow_symlinks=False).st_mtime < cutoff
                    except FileNotFoundError:
                        continue
                    if old and (entry.name.endswith(".part") or name not in in_use):
                        Path(entry.path).unlink(missing_ok=True)
                        removed += 1
        return removed

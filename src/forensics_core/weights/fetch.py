"""Downloading weights into the cache, checked before anything enters it.

A download is trusted only as far as it is checked, because a checkpoint that loads
is a verdict on every file analysed with it. So, before a file is moved into the cache:

* the final response must be HTTP 200/206, must not be an HTML (or other text) page,
  and must carry no ``Content-Encoding`` (we ask for ``identity``; an encoded body
  could inflate without bound and is refused, and the raw bytes are read undecoded);
* the bytes read are capped at the announced length, the source's ``size``, or
  :data:`MAX_DOWNLOAD_BYTES`, whichever applies; a body shorter than announced is a
  truncated download; the whole transfer has a deadline (``deadline`` seconds);
* a ``.part`` is resumed only when the server gave a validator (a strong ``ETag`` or
  ``Last-Modified``, saved beside it in ``NAME.part.json``) and the resume is sent with
  ``If-Range``: a server whose file changed answers the whole new file, so a file
  spliced from two versions cannot be assembled;
* Google Drive's confirmation pages are followed only on Google's hosts, to Google's hosts;
* size and SHA-256 are compared when the source states them, and the detector's own
  check (``validate``: LipFD loads the file's keys and shapes on the meta device and
  rejects NaN/inf) must pass.

The file's SHA-256 is then recorded beside it (``NAME.json``, :func:`.cache.write_record`),
so a later :func:`pull` can tell the cached file is still the one downloaded, and
results and ``forensics models`` can name the exact weights.
"""
from __future__ import annotations

import os
import re
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from forensics_core.errors import WeightsError

from .cache import WeightsSource, _manual_hint, drive_file_id, read_record, sha256_file, weights_dir, write_record
from .drive import drive_next_url, on_drive

#: The endpoint that serves Google Drive files (tests point it at a local server).
DRIVE_DOWNLOAD_URL = "https://drive.usercontent.google.com/download"

#: Bytes per network read while streaming a download. Kept modest: when a connection
#: drops, the bytes of the chunk being read are lost (the rest stays in the .part).
CHUNK_SIZE = 1 << 16

#: How many confirmation pages / restarts one download may go through.
_MAX_HOPS = 6

#: Ceiling on the bytes one download may write when neither the source nor the server
#: states the size (8 GiB; LipFD's checkpoint is 1.8 GB).
MAX_DOWNLOAD_BYTES = 8 << 30

#: Default overall deadline of one download, every hop and resume included (seconds).
DEFAULT_DEADLINE_S = 4 * 3600.0



# --------------------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------------------


def _on_drive(url: str) -> bool:
    """Is ``url`` on one of Google Drive's hosts (or the configured :data:`DRIVE_DOWNLOAD_URL`)?"""
    return on_drive(url, DRIVE_DOWNLOAD_URL)


def _content_range(response: Any) -> tuple[int | None, int | None]:
    """(start, total) from a ``Content-Range`` header; None where absent or ``*``."""
    value = response.headers.get("Content-Range", "")
    m = re.match(r"\s*bytes\s+(\d+|\*)(?:-\d+)?/(\d+|\*)", value)
    if not m:
        return None, None
    start = None if m.group(1) == "*" else int(m.group(1))
    total = None if m.group(2) == "*" else int(m.group(2))
    return start, total


def _want_progress(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _state_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _discard(part: Path) -> None:
    """Drop a ``.part`` and its resume state."""
    _unlink(part)
    _unlink(_state_path(part))


def _validator(response: Any) -> dict[str, str] | None:
    """What ``If-Range`` may carry for this response: a strong ETag, else Last-Modified."""
    etag = response.headers.get("ETag")
    if etag and not etag.startswith("W/"):  # weak ETags may not be used with If-Range (RFC 9110)
        return {"etag": etag}
    modified = response.headers.get("Last-Modified")
    return {"last_modified": modified} if modified else None


def _resume_offset(part: Path, source: WeightsSource) -> tuple[int, dict[str, Any] | None]:
    """(bytes to resume from, saved state); a ``.part`` that cannot be resumed safely is dropped."""
    import json

    if not part.is_file():
        _unlink(_state_path(part))
        return 0, None
    try:
        state = json.loads(_state_path(part).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state = None
    offset = part.stat().st_size
    ok = (isinstance(state, dict) and state.get("source") == source.url and (state.get("etag") or state.get("last_modified"))
          and offset > 0 and (state.get("total") is None or offset <= state["total"])
          and (source.size is None or offset <= source.size))
    if not ok:  # no validator: the server cannot tell us whether the file changed since
        _discard(part)
        return 0, None
    return offset, state


def _save_state(part: Path, source: WeightsSource, validator: dict[str, str] | None, total: int | None) -> None:
    import json

    if validator is None:
        _unlink(_state_path(part))
        return
    _state_path(part).write_text(json.dumps({"source": source.url, "total": total, **validator}), encoding="utf-8")


def _is_page(ctype: str) -> bool:
    """An HTML, XML or plain-text answer: an error or login page, never a checkpoint."""
    return ctype.startswith("text/") or "html" in ctype or ctype in ("application/xml", "application/json")


def _check_deadline(deadline_at: float, source: WeightsSource, written: int | None = None) -> None:
    if time.monotonic() > deadline_at:
        got = f" after {written} bytes" if written is not None else ""
        raise WeightsError(f"download of {source.filename} ran past its deadline{got}")


def _limit(total: int | None, source: WeightsSource, ceiling: int) -> int:
    """How many bytes the file may have: the announced total, the source's size, or the ceiling."""
    for known in (source.size, total):
        if known is not None:
            return known
    return ceiling


def _stream_to_part(response: Any, part: Path, offset: int, total: int | None, source: WeightsSource,
                    progress: bool, deadline_at: float, ceiling: int) -> None:
    """Write the raw (undecoded) body to ``part`` after ``offset`` bytes, within the limits.

    Too many bytes: the ``.part`` is deleted. Too few (connection lost, deadline): it is
    kept, resumable if the server gave a validator.
    """
    from tqdm import tqdm

    limit = _limit(total, source, ceiling)
    raw = response.raw
    read = getattr(raw, "read1", None) or raw.read  # read1: one socket read, so the deadline is seen
    written, oversize = offset, False
    with open(part, "ab" if offset else "wb") as fh, tqdm(
        total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, desc=source.filename,
        file=sys.stderr, disable=not progress, leave=True,
    ) as bar:
        while True:
            _check_deadline(deadline_at, source, written)
            block = read(CHUNK_SIZE, decode_content=False)
            if not block:
                break
            if written + len(block) > limit:
                oversize = True
                break
            written += len(block)
            fh.write(block)
            bar.update(len(block))
    if oversize:
        _discard(part)
        what = "announced" if total is not None and source.size is None else ("expected" if source.size else "allowed")
        raise WeightsError(f"download of {source.filename} is larger than the {limit} bytes {what}; refused")
    if total is not None and written != total:
        raise WeightsError(f"download of {source.filename} stopped at {written} of {total} bytes (truncated)")


def _fetch(session: Any, source: WeightsSource, part: Path, *, progress: bool, timeout: float,
           deadline_at: float, ceiling: int) -> None:
    """Fill ``part`` with the whole file, resuming only what can be resumed safely."""
    assert source.url is not None
    file_id = drive_file_id(source.url)
    if file_id is not None:
        url = f"{DRIVE_DOWNLOAD_URL}?{urllib.parse.urlencode({'id': file_id, 'export': 'download'})}"
    else:
        url = source.url
    seen: set[str] = set()

    for _ in range(_MAX_HOPS):
        _check_deadline(deadline_at, source)
        offset, state = _resume_offset(part, source)
        headers = {"Accept-Encoding": "identity"}
        if offset and state:
            headers["Range"] = f"bytes={offset}-"
            headers["If-Range"] = state.get("etag") or state["last_modified"]
        read_timeout = max(1.0, min(timeout, deadline_at - time.monotonic()))
        with session.get(url, headers=headers, stream=True, timeout=read_timeout, allow_redirects=True) as r:
            ctype = r.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if _is_page(ctype):
                if file_id is None or not _on_drive(r.url):
                    _discard(part)
                    raise WeightsError(f"{r.url} answered a {ctype or 'text'} page (HTTP {r.status_code}), not a checkpoint")
                next_url, _why = drive_next_url(r, session, file_id, DRIVE_DOWNLOAD_URL)
                if not _on_drive(next_url):
                    _discard(part)
                    raise WeightsError(f"Google Drive's page for file {file_id} points outside Google "
                                       f"({urllib.parse.urlsplit(next_url).netloc}); not followed")
                if next_url in seen or next_url == url:
                    raise WeightsError(f"Google Drive kept answering a confirmation page for file {file_id}")
                seen.add(url)
                url = next_url
                continue
            encoding = r.headers.get("Content-Encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                _discard(part)
                raise WeightsError(f"{r.url} sent the file with Content-Encoding {encoding!r} although identity was "
                                   "asked for; refused (an encoded body can inflate without bound)")

            if r.status_code == 416:
                # Range not satisfiable after If-Range matched: the .part may already be the whole file.
                _start, total = _content_range(r)
                if offset and total is not None and offset == total:
                    return
                _discard(part)
                continue

            length = r.headers.get("Content-Length")
            length = int(length) if length and length.isdigit() else None
            if r.status_code == 206:
                start, total = _content_range(r)
                same = state is not None and all(r.headers.get(h) in (None, state[k])
                                                 for h, k in (("ETag", "etag"), ("Last-Modified", "last_modified")) if k in state)
                if start != offset or not offset or not same or (total is not None and length is not None and offset + length != total):
                    _discard(part)  # not the bytes asked for, or another version of the file: start over
                    continue
                total = total if total is not None else (offset + length if length is not None else None)
            elif r.status_code == 200:
                offset, total = 0, length  # fresh download (or the file changed: If-Range answered all of it)
            else:
                reason = f"HTTP {r.status_code} {r.reason or ''}".strip()
                raise WeightsError(f"download of {source.filename} from {url} failed: {reason}")

            if source.size is not None and total is not None and total != source.size:
                _discard(part)
                raise WeightsError(f"{r.url} announces {total} bytes for {source.filename}, expected {source.size}")
            if total is not None and total > _limit(None, source, ceiling):
                _discard(part)
                raise WeightsError(f"{r.url} announces {total} bytes for {source.filename}, over the "
                                   f"{_limit(None, source, ceiling)}-byte ceiling; refused")
            _save_state(part, source, _validator(r) if r.status_code == 200 else state, total)
            _stream_to_part(r, part, offset, total, source, progress, deadline_at, ceiling)
            return

    raise WeightsError(f"download of {source.filename} from {source.url} did not settle after {_MAX_HOPS} tries")


def _verify_part(part: Path, source: WeightsSource, validate: Callable[[Path], None] | None) -> str:
    """Size, sha256 and the detector's own check; returns the sha256. Deletes ``part`` on failure."""
    size = part.stat().st_size
    if source.size is not None and size != source.size:
        _discard(part)
        raise WeightsError(f"downloaded {source.filename} has {size} bytes, expected {source.size}")
    digest = sha256_file(part, chunk=1 << 22)
    if source.sha256 is not None and digest != source.sha256:
        _discard(part)
        raise WeightsError(
            f"downloaded {source.filename} has sha256 {digest}, expected {source.sha256} "
            "(corrupt download or the file changed upstream)"
        )
    if validate is not None:
        try:
            validate(part)
        except WeightsError as exc:
            _discard(part)
            raise WeightsError(f"downloaded {source.filename} is not a usable checkpoint: {exc.message}") from exc
    return digest


def download(
    source: WeightsSource,
    dest: Path | None = None,
    *,
    progress: bool | None = None,
    timeout: float = 60,
    session: Any = None,
    detector_id: str | None = None,
    validate: Callable[[Path], None] | None = None,
    deadline: float | None = DEFAULT_DEADLINE_S,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
) -> Path:
    """Download ``source`` to ``dest`` (default ``weights_dir() / source.filename``), checked.

    Bytes go to ``dest.name + ".part"`` in the same directory; see the module docstring
    for every check made before the file is moved into place with :func:`os.replace`.
    ``validate(path)`` is the detector's own check of a candidate file (raises
    :class:`WeightsError`). ``timeout`` bounds each network wait, ``deadline`` the whole
    download (``None``: no deadline). After the move the sha256 is recorded beside
    ``dest`` (``NAME.json``). A failed transfer keeps a resumable ``.part`` (one whose
    server gave a validator); anything that failed a check is deleted.
    ``session`` may be a :class:`requests.Session`; ``detector_id`` only improves hints.
    """
    import requests
    import urllib3

    cache_path = weights_dir() / source.filename
    dest = Path(dest) if dest is not None else cache_path
    if source.url is None:
        raise WeightsError(
            f"{source.filename} cannot be downloaded automatically (no URL is known)",
            hint=_manual_hint(source, dest),
        )
    part = dest.with_name(dest.name + ".part")
    deadline_at = time.monotonic() + (deadline if deadline is not None else float("inf"))
    own_session = session is None
    sess = requests.Session() if own_session else session
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _fetch(sess, source, part, progress=_want_progress(progress), timeout=timeout, deadline_at=deadline_at,
               ceiling=max_bytes)
        digest = _verify_part(part, source, validate)
        _unlink(_state_path(part))
        _unlink(dest.with_name(dest.name + ".json"))  # the old record describes the old file
        os.replace(part, dest)
        write_record(dest, digest, source=source.url, **({"detector_id": detector_id} if detector_id else {}))
    except WeightsError as exc:
        if not _state_path(part).is_file():
            _unlink(part)  # not resumable: nothing half-made stays in the cache
        if exc.hint is None:
            exc.hint = _download_hint(source, dest, part, detector_id)
        raise
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        if not _state_path(part).is_file():
            _unlink(part)
        raise WeightsError(
            f"download of {source.filename} from {source.url} failed: {type(exc).__name__}: {exc}",
            hint=_download_hint(source, dest, part, detector_id),
        ) from exc
    finally:
        if own_session:
            sess.close()
    return dest


def _download_hint(source: WeightsSource, dest: Path, part: Path, detector_id: str | None) -> str:
    again = f"`forensics pull {detector_id}`" if detector_id else "the download"
    resume = f" (it resumes from {part})" if part.is_file() else ""
    return f"check your connection and run {again} again{resume}; or " + _manual_hint(source, dest)


def cached_file_ok(dest: Path, source: WeightsSource, validate: Callable[[Path], None] | None = None) -> bool:
    """Is the cached ``dest`` still a good copy? Recorded where it was not (a file placed by hand that passes).

    With a published sha256: it must match. Otherwise the download record beside it must
    still describe it and its sha256 must still match (the file is re-hashed: a flipped
    byte is caught); a file without a record must pass ``validate`` (then it is recorded).
    """
    if not dest.is_file():
        return False
    if source.size is not None and dest.stat().st_size != source.size:
        return False
    if source.sha256 is not None:
        return sha256_file(dest, chunk=1 << 22) == source.sha256
    record = read_record(dest)
    if record is not None:
        return sha256_file(dest, chunk=1 << 22) == record["sha256"]
    if validate is None:
        return False  # nothing to check it against: download again
    try:
        validate(dest)
    except WeightsError:
        return False
    write_record(dest, sha256_file(dest, chunk=1 << 22), source=source.url, note="found in the cache, checked by loading")
    return True


def pull(
    detector_id: str,
    source: WeightsSource,
    *,
    force: bool = False,
    progress: bool | None = None,
    timeout: float = 60,
    session: Any = None,
    validate: Callable[[Path], None] | None = None,
    deadline: float | None = DEFAULT_DEADLINE_S,
) -> Path:
    """Make sure the cache holds good weights; download them when missing, not verifiable, wrong, or ``force``.

    A cached file is kept only when :func:`cached_file_ok` says so; a corrupt one is
    replaced (the new download is fully checked first).
    """
    dest = weights_dir() / source.filename
    if not force and cached_file_ok(dest, source, validate):
        return dest
    if source.url is None:
        raise WeightsError(
            f"weights for detector {detector_id!r} cannot be downloaded automatically",
            hint=_manual_hint(source, dest),
        )
    return download(source, dest, progress=progress, timeout=timeout, session=session, detector_id=detector_id,
                    validate=validate, deadline=deadline)

"""Downloading weights into the cache: HTTP(S) with resume, Google Drive's confirmation pages."""
from __future__ import annotations

import html
import os
import re
import sys
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from forensics_core.errors import WeightsError

from .cache import WeightsSource, _manual_hint, drive_file_id, sha256_file, weights_dir

#: The endpoint that serves Google Drive files (tests point it at a local server).
DRIVE_DOWNLOAD_URL = "https://drive.usercontent.google.com/download"

#: Bytes per network read while streaming a download. Kept modest: when a connection
#: drops, the bytes of the chunk being read are lost (the rest stays in the .part).
CHUNK_SIZE = 1 << 16

#: How many confirmation pages / restarts one download may go through.
_MAX_HOPS = 6

#: At most this much of an HTML page is read while looking for Drive's confirmation form.
_MAX_HTML_BYTES = 2 << 20


# --------------------------------------------------------------------------------------
# Google Drive pages
# --------------------------------------------------------------------------------------


class _DrivePageParser(HTMLParser):
    """Pulls out of a Drive HTML page what gdown looks for: the download form, a
    ``confirm=`` link, and the error caption."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.form_action: str | None = None
        self.form_inputs: dict[str, str] = {}
        self.confirm_href: str | None = None
        self.title = ""
        self.error_caption = ""
        self.error_subcaption = ""
        self._in_form = False
        self._capture: str | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form" and a.get("id") == "download-form":
            self._in_form = True
            self.form_action = a.get("action", "")
        elif tag == "input" and self._in_form and a.get("type", "").lower() == "hidden" and a.get("name"):
            self.form_inputs[a["name"]] = a.get("value", "")
        elif tag == "a" and self.confirm_href is None and "confirm=" in a.get("href", ""):
            self.confirm_href = a["href"]
        if self._capture is not None:
            self._depth += 1
        elif tag == "title":
            self._capture, self._depth = "title", 1
        elif tag == "p" and a.get("class"):
            classes = a["class"].split()
            if "uc-error-subcaption" in classes:
                self._capture, self._depth = "error_subcaption", 1
            elif "uc-error-caption" in classes:
                self._capture, self._depth = "error_caption", 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        if self._capture is not None:
            self._depth -= 1
            if self._depth <= 0:
                self._capture = None

    def handle_data(self, data: str) -> None:
        if self._capture is not None:
            setattr(self, self._capture, getattr(self, self._capture) + data)


def _read_limited(response: Any, limit: int = _MAX_HTML_BYTES) -> str:
    buf = bytearray()
    for block in response.iter_content(chunk_size=65536):
        buf += block
        if len(buf) >= limit:
            break
    return bytes(buf).decode(response.encoding or "utf-8", errors="replace")


def _drive_next_url(response: Any, session: Any, file_id: str) -> tuple[str, str]:
    """Given an HTML response from Drive, the URL to request next, and why.

    Raises :class:`WeightsError` (without a hint; the caller adds one) for error pages.
    """
    text = _read_limited(response)
    parser = _DrivePageParser()
    try:
        parser.feed(text)
        parser.close()
    except Exception:  # noqa: BLE001 - a malformed page is handled like an unknown one
        pass
    base = response.url

    # 1. The virus-scan / large-file page: <form id="download-form" action=...> + hidden inputs.
    if parser.form_action is not None and parser.form_inputs:
        action = urllib.parse.urljoin(base, html.unescape(parser.form_action))
        parts = urllib.parse.urlsplit(action)
        query = urllib.parse.parse_qs(parts.query)
        for name, value in parser.form_inputs.items():
            query[name] = [value]
        url = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query, doseq=True)))
        return url, "download form"

    # 2. The older page: a "Download anyway" link carrying confirm=TOKEN.
    if parser.confirm_href:
        return urllib.parse.urljoin(base, html.unescape(parser.confirm_href)), "confirm link"

    # 3. The oldest flow: a download_warning cookie whose value is the confirm token.
    jars = [getattr(response, "cookies", None), getattr(session, "cookies", None)]
    for jar in jars:
        if jar is None:
            continue
        for cookie in jar:
            if cookie.name.startswith("download_warning") and cookie.value:
                query = urllib.parse.urlencode({"id": file_id, "export": "download", "confirm": cookie.value})
                return f"{DRIVE_DOWNLOAD_URL}?{query}", "download_warning cookie"

    # 4. Some pages embed the final URL as JSON.
    m = re.search(r'"downloadUrl":"([^"]+)', text)
    if m:
        url = m.group(1).replace("\\u003d", "=").replace("\\u0026", "&")
        if urllib.parse.urlsplit(url).scheme in ("http", "https"):
            return url, "downloadUrl"

    # Anything else is an error page (quota exceeded, no permission, not found...).
    pieces = [" ".join(s.split()) for s in (parser.error_caption, parser.error_subcaption)]
    detail = " ".join(p for p in pieces if p) or " ".join(parser.title.split())
    if not detail:
        detail = "it answered an HTML page without a download link"
    raise WeightsError(f"Google Drive did not serve file {file_id} (HTTP {response.status_code}): {detail}")


# --------------------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------------------


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


def _stream_to_part(response: Any, part: Path, offset: int, source: WeightsSource, progress: bool) -> None:
    """Write the response body to ``part`` (appending after ``offset`` bytes when offset > 0)."""
    from tqdm import tqdm

    length = response.headers.get("Content-Length")
    total = offset + int(length) if length and length.isdigit() else source.size
    mode = "ab" if offset else "wb"
    written = offset
    with open(part, mode) as fh, tqdm(
        total=total,
        initial=offset,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=source.filename,
        file=sys.stderr,
        disable=not progress,
        leave=True,
    ) as bar:
        for block in response.iter_content(chunk_size=CHUNK_SIZE):
            if not block:
                continue
            written += len(block)
            if source.size is not None and written > source.size:
                fh.close()
                _unlink(part)
                raise WeightsError(
                    f"download of {source.filename} is larger than the expected {source.size} bytes; "
                    "the server sent a different file",
                )
            fh.write(block)
            bar.update(len(block))


def _verify_part(part: Path, source: WeightsSource) -> None:
    """Check size and sha256 (when known); delete ``part`` and raise on a mismatch."""
    size = part.stat().st_size
    if source.size is not None and size != source.size:
        _unlink(part)
        raise WeightsError(f"downloaded {source.filename} has {size} bytes, expected {source.size}")
    if source.sha256 is not None:
        digest = sha256_file(part)
        if digest != source.sha256:
            _unlink(part)
            raise WeightsError(
                f"downloaded {source.filename} has sha256 {digest}, expected {source.sha256} "
                "(corrupt download or the file changed upstream)"
            )


def _fetch(session: Any, source: WeightsSource, part: Path, *, progress: bool, timeout: float) -> None:
    """Fill ``part`` with the whole file, resuming what is already there."""
    assert source.url is not None
    file_id = drive_file_id(source.url)
    if file_id is not None:
        url = f"{DRIVE_DOWNLOAD_URL}?{urllib.parse.urlencode({'id': file_id, 'export': 'download'})}"
    else:
        url = source.url
    seen: set[str] = set()

    for _ in range(_MAX_HOPS):
        offset = part.stat().st_size if part.is_file() else 0
        if source.size is not None and offset > source.size:
            _unlink(part)
            offset = 0
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        with session.get(url, headers=headers, stream=True, timeout=timeout, allow_redirects=True) as r:
            ctype = r.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if file_id is not None and ctype == "text/html":
                next_url, _why = _drive_next_url(r, session, file_id)
                if next_url in seen or next_url == url:
                    raise WeightsError(
                        f"Google Drive kept answering a confirmation page for file {file_id}"
                    )
                seen.add(url)
                url = next_url
                continue

            if r.status_code == 416:
                # Range not satisfiable: the .part may already hold the whole file.
                _start, total = _content_range(r)
                if offset and offset in {source.size, total} - {None}:
                    return
                if offset:
                    _unlink(part)  # the .part is not a prefix of this file; start over
                    continue
                raise WeightsError(f"{url} answered HTTP 416 to a request without a Range header")

            if r.status_code == 206:
                start, _total = _content_range(r)
                if start != offset:
                    _unlink(part)  # not the bytes we asked for; start over
                    continue
                _stream_to_part(r, part, offset, source, progress)
                return

            if r.status_code == 200:
                # A fresh download, or a server that ignores Range: (re)start from zero.
                _stream_to_part(r, part, 0, source, progress)
                return

            reason = f"HTTP {r.status_code} {r.reason or ''}".strip()
            raise WeightsError(f"download of {source.filename} from {url} failed: {reason}")

    raise WeightsError(f"download of {source.filename} from {source.url} did not settle after {_MAX_HOPS} tries")


def download(
    source: WeightsSource,
    dest: Path | None = None,
    *,
    progress: bool | None = None,
    timeout: float = 60,
    session: Any = None,
    detector_id: str | None = None,
) -> Path:
    """Download ``source`` to ``dest`` (default ``weights_dir() / source.filename``).

    Bytes go to ``dest.name + ".part"`` in the same directory; an existing ``.part`` is
    resumed with a ``Range`` request. Size and SHA-256 are checked when known (a mismatch
    deletes the ``.part``), then the file is moved into place with :func:`os.replace`.
    A failed transfer keeps the ``.part`` so that calling again resumes it.
    ``session`` may be a :class:`requests.Session`; ``detector_id`` only improves hints.
    """
    import requests

    cache_path = weights_dir() / source.filename
    dest = Path(dest) if dest is not None else cache_path
    if source.url is None:
        raise WeightsError(
            f"{source.filename} cannot be downloaded automatically (no URL is known)",
            hint=_manual_hint(source, dest),
        )
    part = dest.with_name(dest.name + ".part")
    own_session = session is None
    sess = requests.Session() if own_session else session
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _fetch(sess, source, part, progress=_want_progress(progress), timeout=timeout)
        _verify_part(part, source)
        os.replace(part, dest)
    except WeightsError as exc:
        if exc.hint is None:
            exc.hint = _download_hint(source, dest, part, detector_id)
        raise
    except (requests.RequestException, OSError) as exc:
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


def pull(
    detector_id: str,
    source: WeightsSource,
    *,
    force: bool = False,
    progress: bool | None = None,
    timeout: float = 60,
    session: Any = None,
) -> Path:
    """Make sure the cache holds the weights; download them when missing, wrong, or ``force``.

    A cached file is kept when its SHA-256 matches (or, with no known hash, its size does).
    """
    dest = weights_dir() / source.filename
    if not force and dest.is_file():
        if source.sha256 is not None:
            if sha256_file(dest) == source.sha256:
                return dest
        elif source.size is None or dest.stat().st_size == source.size:
            return dest
    if source.url is None:
        raise WeightsError(
            f"weights for detector {detector_id!r} cannot be downloaded automatically",
            hint=_manual_hint(source, dest),
        )
    return download(source, dest, progress=progress, timeout=timeout, session=session, detector_id=detector_id)

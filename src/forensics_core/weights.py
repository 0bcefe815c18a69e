"""Where detector weights live, how they are found, and how they are downloaded.

Lookup order for a detector's weights (:func:`resolve_weights`):

1. an explicit path (``--weights PATH`` / ``weights=`` option);
2. the detector's environment variable (``WeightsSource.env_var``);
3. the cache: ``weights_dir() / source.filename``, where ``weights_dir()`` is
   ``$FORENSICS_HOME/weights`` or ``<user cache dir>/forensics/weights``.

:func:`download` fetches a file over HTTP(S) or from Google Drive into the cache via a
``.part`` file that later calls resume with an HTTP ``Range`` request; the size and
SHA-256 are checked (when known) before the file is atomically moved into place.

This module imports ``requests`` and ``tqdm`` only inside the functions that need them.
"""
from __future__ import annotations

import hashlib
import html
import os
import re
import sys
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal

import pydantic

from forensics_core.errors import WeightsError

__all__ = [
    "DRIVE_DOWNLOAD_URL",
    "WeightsSource",
    "download",
    "drive_file_id",
    "forensics_home",
    "pull",
    "resolve_weights",
    "sha256_file",
    "weights_dir",
]

#: The endpoint that serves Google Drive files (tests point it at a local server).
DRIVE_DOWNLOAD_URL = "https://drive.usercontent.google.com/download"

#: Bytes per network read while streaming a download. Kept modest: when a connection
#: drops, the bytes of the chunk being read are lost (the rest stays in the .part).
CHUNK_SIZE = 1 << 16

#: How many confirmation pages / restarts one download may go through.
_MAX_HOPS = 6

#: At most this much of an HTML page is read while looking for Drive's confirmation form.
_MAX_HTML_BYTES = 2 << 20

_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_DRIVE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{10,}$")
_DRIVE_HOSTS = {"drive.google.com", "docs.google.com", "drive.usercontent.google.com"}


# --------------------------------------------------------------------------------------
# Source description
# --------------------------------------------------------------------------------------


class WeightsSource(pydantic.BaseModel, frozen=True, extra="forbid"):
    """Where a detector's weights come from and what they must look like."""

    #: http(s) URL, a Google Drive URL, or ``gdrive://FILE_ID``; None: manual download only.
    url: str | None
    #: File name in the cache directory (a bare name, no directories).
    filename: str
    format: Literal["torch", "safetensors"]
    #: Expected SHA-256 (hex); checked after download and by :func:`pull`.
    sha256: str | None = None
    #: Expected size in bytes.
    size: int | None = None
    #: Environment variable that may hold a path to the weights, e.g. ``FORENSICS_LIPFD_WEIGHTS``.
    env_var: str | None = None
    #: Where a human can get the file by hand.
    homepage: str | None = None

    @pydantic.field_validator("url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        scheme = urllib.parse.urlsplit(v).scheme.lower()
        if scheme == "gdrive":
            if drive_file_id(v) is None:
                raise ValueError(f"gdrive URL without a valid file id: {v!r}")
        elif scheme not in ("http", "https"):
            raise ValueError(f"weights URL must be http(s):// or gdrive://, got {v!r}")
        return v

    @pydantic.field_validator("filename")
    @classmethod
    def _check_filename(cls, v: str) -> str:
        if not v or v in (".", "..") or "/" in v or "\\" in v or "\x00" in v or v.endswith(".part"):
            raise ValueError(f"filename must be a bare file name, got {v!r}")
        return v

    @pydantic.field_validator("sha256")
    @classmethod
    def _check_sha256(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not _SHA256_RE.match(v):
            raise ValueError(f"sha256 must be 64 hex digits, got {v!r}")
        return v.lower()

    @pydantic.field_validator("size")
    @classmethod
    def _check_size(cls, v: int | None) -> int | None:
        if v is not None and v <= 0:
            raise ValueError("size must be positive")
        return v

    @pydantic.field_validator("env_var")
    @classmethod
    def _check_env_var(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", v):
            raise ValueError(f"not a valid environment variable name: {v!r}")
        return v


# --------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------


def forensics_home() -> Path:
    """``$FORENSICS_HOME`` if set, else the per-user cache directory. Creates nothing."""
    env = os.environ.get("FORENSICS_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("forensics"))


def weights_dir() -> Path:
    """The directory that cached weights live in. Creates nothing."""
    return forensics_home() / "weights"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in ``chunk``-byte pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def drive_file_id(url: str) -> str | None:
    """The Google Drive file id in ``url``, or None when it is not a Drive URL.

    Understands ``gdrive://ID``, ``https://drive.google.com/file/d/ID/view``,
    ``.../open?id=ID``, ``.../uc?id=ID`` and ``drive.usercontent.google.com/download?id=ID``.
    """
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "gdrive":
        fid = (parts.netloc + parts.path).strip("/")
        return fid if _DRIVE_ID_RE.match(fid) else None
    if scheme not in ("http", "https") or (parts.hostname or "").lower() not in _DRIVE_HOSTS:
        return None
    m = re.search(r"/file/d/([A-Za-z0-9_-]+)", parts.path)
    if m:
        return m.group(1)
    ids = urllib.parse.parse_qs(parts.query).get("id")
    if ids and _DRIVE_ID_RE.match(ids[0]):
        return ids[0]
    return None


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _manual_hint(source: WeightsSource, cache_path: Path, detector_id: str | None = None) -> str:
    """How to get the weights by hand: where from, and the three places to put them."""
    where = source.homepage or source.url
    get = f"download {source.filename} from {where}" if where else f"obtain {source.filename}"
    places = ["pass `--weights PATH`"]
    if source.env_var:
        places.append(f"set {source.env_var}=PATH")
    places.append(f"place it at {cache_path}")
    text = f"{get} and " + (", ".join(places[:-1]) + f", or {places[-1]}")
    if detector_id and source.url:
        text = f"run `forensics pull {detector_id}`, or " + text
    return text


# --------------------------------------------------------------------------------------
# Lookup
# --------------------------------------------------------------------------------------


def resolve_weights(
    detector_id: str,
    source: WeightsSource | None,
    explicit: str | os.PathLike | None = None,
) -> Path:
    """Find a detector's weights: explicit path, then ``source.env_var``, then the cache.

    A given explicit path or environment variable that does not name a file is an error
    (it never falls through to the cache). When nothing is found, the :class:`WeightsError`
    says exactly how to get the weights.
    """
    if explicit is not None and os.fspath(explicit) != "":
        path = Path(os.fspath(explicit)).expanduser()
        if not path.is_file():
            what = "is a directory, not a file" if path.is_dir() else "does not exist"
            raise WeightsError(
                f"weights for detector {detector_id!r}: {path} {what}",
                hint=(_manual_hint(source, weights_dir() / source.filename, detector_id) if source
                      else "pass --weights with the path of an existing weights file"),
            )
        return path

    if source is None:
        raise WeightsError(
            f"detector {detector_id!r} declares no weights source and no weights path was given",
            hint="pass `--weights PATH` with the path of a weights file",
        )

    cache_path = weights_dir() / source.filename
    if source.env_var:
        value = os.environ.get(source.env_var)
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                what = "is a directory, not a file" if path.is_dir() else "does not exist"
                raise WeightsError(
                    f"weights for detector {detector_id!r}: {source.env_var}={value} {what}",
                    hint=f"point {source.env_var} at an existing file, or unset it to use the cache; "
                    + _manual_hint(source, cache_path, detector_id),
                )
            return path

    if cache_path.is_file():
        if source.size is not None and cache_path.stat().st_size != source.size:
            raise WeightsError(
                f"weights for detector {detector_id!r} at {cache_path} have {cache_path.stat().st_size} bytes, "
                f"expected {source.size} (truncated or a different file)",
                hint=(f"run `forensics pull {detector_id} --force` to download them again, or "
                      if source.url else "")
                + _manual_hint(source, cache_path),
            )
        return cache_path

    looked = [str(cache_path)]
    if source.env_var:
        looked.insert(0, f"${source.env_var} (not set)")
    if source.url:
        size = f" ({_human_size(source.size)})" if source.size else ""
        message = (
            f"weights for detector {detector_id!r} not found (looked at: {', '.join(looked)}); "
            f"run `forensics pull {detector_id}` to download {source.filename}{size} to {cache_path}"
        )
    else:
        message = (
            f"weights for detector {detector_id!r} not found (looked at: {', '.join(looked)}); "
            f"they cannot be downloaded automatically: `forensics pull {detector_id}` is not available, "
            f"get {source.filename} by hand and place it at {cache_path}"
        )
    raise WeightsError(message, hint=_manual_hint(source, cache_path, detector_id))


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

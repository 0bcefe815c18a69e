"""Google Drive's confirmation pages: what to request next, and which hosts may say so.

Drive answers a large file with an HTML "can't scan this file for viruses" page (a
form, an older ``confirm=`` link, a ``download_warning`` cookie, or an embedded
``downloadUrl``) instead of the file. :func:`drive_next_url` reads those the way
gdown does; :mod:`.fetch` follows them only while on Google's hosts (:func:`on_drive`).
"""
from __future__ import annotations

import html
import re
import urllib.parse
from html.parser import HTMLParser
from typing import Any

from forensics_core.errors import WeightsError

#: At most this much of an HTML page is read while looking for Drive's confirmation form.
_MAX_HTML_BYTES = 2 << 20

#: Hosts whose HTML pages may be read as Google Drive confirmation pages (and the hosts
#: those pages may send us to); files themselves may come from ``*.googleusercontent.com``.
GOOGLE_DRIVE_HOSTS = frozenset({"drive.google.com", "docs.google.com", "drive.usercontent.google.com"})
_GOOGLE_CONTENT_SUFFIX = ".googleusercontent.com"


def on_drive(url: str, endpoint: str) -> bool:
    """Is ``url`` (https) on one of Google Drive's hosts, or on the configured download ``endpoint``?"""
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and (host in GOOGLE_DRIVE_HOSTS or host.endswith(_GOOGLE_CONTENT_SUFFIX)):
        return True
    configured = urllib.parse.urlsplit(endpoint)
    return parts.scheme == configured.scheme and parts.netloc.lower() == configured.netloc.lower()




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


def drive_next_url(response: Any, session: Any, file_id: str, endpoint: str) -> tuple[str, str]:
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
                return f"{endpoint}?{query}", "download_warning cookie"

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

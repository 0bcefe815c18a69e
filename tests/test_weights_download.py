"""Weights lookup and download, against a local HTTP server on 127.0.0.1 only."""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import json
import os
import time
import threading
import urllib.parse
from pathlib import Path

import pytest

from forensics_core import weights as W
from forensics_core.errors import WeightsError
from forensics_core.weights import WeightsSource

PAYLOAD = bytes(range(256)) * 1200  # 307,200 bytes, not a multiple of the 1 MiB chunk
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
DRIVE_ID = "1AbCdEfGhIjKlMnOpQrStUvWxYz012345"
UUID = "5c6f1b2e-0000-4a7e-9d3c-2f1e0d9c8b7a"

# Modelled on the page drive.usercontent.google.com answers for files too large to scan.
CONFIRM_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title>
<meta http-equiv="content-type" content="text/html; charset=utf-8"/>
<link rel="icon" href="//ssl.gstatic.com/docs/doclist/images/drive_2022q3_32dp.png"/></head>
<body><div class="uc-main"><div id="uc-text"><p class="uc-warning-caption">Google Drive can't scan this file for viruses.</p>
<p class="uc-warning-subcaption"><span class="uc-name-size"><a href="/open?id={id}">ckpt.pth</a> (300K)</span>
is too large for Google to scan for viruses. Would you still like to download this file?</p>
<form id="download-form" action="{action}" method="get">
<input type="submit" id="uc-download-link" class="goog-inline-block jfk-button jfk-button-action" value="Download anyway"/>
<input type="hidden" name="id" value="{id}"><input type="hidden" name="export" value="download">
<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="{uuid}"></form></div></div>
<div class="uc-footer"><hr class="uc-footer-divider"></div></body></html>"""

QUOTA_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title>
<meta http-equiv="content-type" content="text/html; charset=utf-8"/></head>
<body><div class="uc-main"><div id="uc-text"><p class="uc-error-caption">Sorry, you can&#39;t view or download this file at this time.</p>
<p class="uc-error-subcaption">Too many users have viewed or downloaded this file recently. Please try accessing the file
again later. If the file you are trying to access is particularly large or is shared with many people, it may take up to
24 hours to be able to view or download the file.</p></div></div></body></html>"""


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    # -- helpers -------------------------------------------------------------------
    def _send(self, status, body, ctype="application/octet-stream", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _send_file(self, data, *, honour_range=True, validators=True, honour_if_range=True):
        """Serve ``data`` as a real server does: a strong ETag, Range answered with 206 unless
        If-Range names another version (then the whole file, 200)."""
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        tags = [("ETag", etag), ("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")] if validators else []
        rng, if_range = self.headers.get("Range"), self.headers.get("If-Range")
        current = not if_range or not honour_if_range or if_range == etag
        if honour_range and current and rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[len("bytes="):-1])
            if start >= len(data):
                self._send(416, b"", headers=[("Content-Range", f"bytes */{len(data)}")])
                return
            self._send(206, data[start:], headers=[("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}"), *tags])
            return
        self._send(200, data, headers=tags)

    # -- routes --------------------------------------------------------------------
    def do_GET(self):
        st = self.server.state
        parts = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        with st["lock"]:
            st["log"].append({"path": parts.path, "query": query, "range": self.headers.get("Range"),
                              "if_range": self.headers.get("If-Range"), "accept_encoding": self.headers.get("Accept-Encoding")})
            st["hits"][parts.path] = st["hits"].get(parts.path, 0) + 1
            hit = st["hits"][parts.path]

        if parts.path == "/file.bin":
            self._send_file(PAYLOAD)
        elif parts.path == "/norange.bin":
            self._send_file(PAYLOAD, honour_range=False)
        elif parts.path == "/flaky.bin":
            if hit == 1:  # announce the whole file, send half of it, then hang up
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(PAYLOAD)))
                self.send_header("ETag", '"' + hashlib.sha256(PAYLOAD).hexdigest()[:16] + '"')
                self.end_headers()
                self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self._send_file(PAYLOAD)
        elif parts.path == "/missing.bin":
            self._send(404, b"not found", ctype="text/plain")
        elif parts.path in HOSTILE:
            HOSTILE[parts.path](self, hit)
        elif parts.path == "/drive/download":
            self._drive(query)
        else:
            self._send(404, b"no route", ctype="text/plain")

    def _drive(self, q):
        fid = q.get("id", "")
        html_type = "text/html; charset=utf-8"
        if fid == "offsiteoffsite":  # a "confirmation page" that sends the client to another host
            page = CONFIRM_PAGE.format(id=fid, uuid=UUID, action="http://127.0.0.2:9/payload")
            self._send(200, page.encode(), ctype=html_type)
        elif fid == "quotaquotaquota":
            self._send(200, QUOTA_PAGE.encode(), ctype=html_type)
        elif fid == "cookiecookiecookie":
            if q.get("confirm") == "TOKEN42":
                self._send_file(PAYLOAD)
            else:
                page = b"<html><head><title>Google Drive</title></head><body>no form here</body></html>"
                self._send(200, page, ctype=html_type,
                           headers=[("Set-Cookie", "download_warning_1234_abcd=TOKEN42; Path=/")])
        elif fid == DRIVE_ID:
            if q.get("confirm") == "t" and q.get("uuid") == UUID and q.get("export") == "download":
                self._send_file(PAYLOAD)
            else:
                action = f"http://127.0.0.1:{self.server.server_address[1]}/drive/download"
                page = CONFIRM_PAGE.format(id=DRIVE_ID, uuid=UUID, action=action)
                self._send(200, page.encode(), ctype=html_type)
        else:
            self._send(404, b"<html><title>Not Found</title></html>", ctype=html_type)


# -- hostile servers (issue 14, item 6): each route misbehaves in one way ------------------

VERSION_A = bytes(range(256)) * 1000
VERSION_B = bytes(reversed(range(256))) * 1000  # same length, other bytes: a new upload of the file


def _headers_then(handler, status, headers, body, *, close=True):
    handler.send_response(status)
    for k, v in headers:
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(body)
    handler.wfile.flush()
    if close:
        handler.close_connection = True


def _html_page(h, hit):  # a plain server answering a login/confirmation page: never a checkpoint
    page = CONFIRM_PAGE.format(id=DRIVE_ID, uuid=UUID, action="/file.bin").encode()
    h._send(200, page, ctype="text/html; charset=utf-8")


def _gzip_bomb(h, hit):  # ignores Accept-Encoding: identity; 64 MiB of zeros in ~64 KiB
    h._send(200, GZIP_BOMB, headers=[("Content-Encoding", "gzip")])


def _truncated(h, hit):  # announces the whole file, sends half, hangs up; no validator to resume with
    _headers_then(h, 200, [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(ckpt())))], ckpt()[: len(ckpt()) // 2])


def _length_lie(h, hit):  # Content-Length says half: a client that trusts it keeps half a checkpoint
    _headers_then(h, 200, [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(ckpt()) // 2))], ckpt())


def _huge(h, hit):  # announces 100 GB
    _headers_then(h, 200, [("Content-Type", "application/octet-stream"), ("Content-Length", str(100 << 30))], b"x" * 1000)


def _endless(h, hit):  # no length at all, and more bytes than any checkpoint
    h.send_response(200)
    h.send_header("Content-Type", "application/octet-stream")
    h.end_headers()
    try:
        for _ in range(64):
            h.wfile.write(b"\0" * 65536)
    except OSError:
        pass
    h.close_connection = True


def _drip(h, hit):  # a byte at a time: each read succeeds, the download never ends
    h.send_response(200)
    h.send_header("Content-Type", "application/octet-stream")
    h.send_header("Content-Length", str(len(PAYLOAD)))
    h.end_headers()
    try:
        for i in range(200):
            h.wfile.write(PAYLOAD[i:i + 1])
            h.wfile.flush()
            time.sleep(0.05)
    except OSError:
        pass
    h.close_connection = True


def _versions(honour_if_range: bool, validators: bool):
    """Version A until the first transfer breaks off halfway, then version B (the file was re-uploaded)."""
    def route(h, hit):
        if hit == 1:
            tags = [("ETag", '"A"'), ("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")] if validators else []
            _headers_then(h, 200, [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(VERSION_A))), *tags],
                          VERSION_A[: len(VERSION_A) // 2])
            return
        tags = [("ETag", '"B"'), ("Last-Modified", "Tue, 02 Jan 2024 00:00:00 GMT")] if validators else []
        rng, if_range = h.headers.get("Range"), h.headers.get("If-Range")
        if rng and (not honour_if_range or if_range in ('"B"', "Tue, 02 Jan 2024 00:00:00 GMT")):
            start = int(rng[len("bytes="):-1])
            h._send(206, VERSION_B[start:], headers=[("Content-Range", f"bytes {start}-{len(VERSION_B) - 1}/{len(VERSION_B)}"), *tags])
        else:
            h._send(200, VERSION_B, headers=tags)
    return route


HOSTILE = {
    "/page.bin": _html_page, "/gzip.bin": _gzip_bomb, "/truncated.bin": _truncated, "/lie.bin": _length_lie,
    "/huge.bin": _huge, "/endless.bin": _endless, "/drip.bin": _drip,
    "/versions.bin": _versions(honour_if_range=True, validators=True),
    "/versions-ignores-if-range.bin": _versions(honour_if_range=False, validators=True),
    "/versions-no-validator.bin": _versions(honour_if_range=False, validators=False),
}


@functools.cache
def ckpt() -> bytes:
    """A small real checkpoint in the released layout ({'model': state_dict, ...})."""
    import torch

    buf = io.BytesIO()
    torch.save({"model": {"w": torch.arange(20000, dtype=torch.float32)}, "total_steps": 1}, buf)
    return buf.getvalue()


_bomb = io.BytesIO()
with gzip.GzipFile(fileobj=_bomb, mode="wb", compresslevel=9) as _gz:
    for _ in range(64):
        _gz.write(bytes(1 << 20))
GZIP_BOMB = _bomb.getvalue()


def load_check(path):
    """A detector's own check, as LipFD's: the file must load (weights_only) with the expected keys and shapes."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)["model"]
    except Exception as exc:  # noqa: BLE001
        raise WeightsError(f"cannot load {path}: {type(exc).__name__}") from exc
    if set(state) != {"w"} or tuple(state["w"].shape) != (20000,):
        raise WeightsError("keys or shapes do not fit")


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.state = {"lock": threading.Lock(), "log": [], "hits": {}}
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """Every test gets its own FORENSICS_HOME; nothing touches the real user cache."""
    h = tmp_path / "home"
    monkeypatch.setenv("FORENSICS_HOME", str(h))
    monkeypatch.delenv("FORENSICS_TEST_WEIGHTS", raising=False)
    return h


@pytest.fixture
def drive(server, monkeypatch):
    monkeypatch.setattr(W.fetch, "DRIVE_DOWNLOAD_URL", server.base + "/drive/download")
    return server


def src(url, **kw):
    kw.setdefault("filename", "ckpt.pth")
    kw.setdefault("format", "torch")
    return WeightsSource(url=url, **kw)


def leftovers(directory: Path):
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# -- paths ---------------------------------------------------------------------------


def test_forensics_home_override_creates_nothing(home):
    assert W.forensics_home() == home
    assert W.weights_dir() == home / "weights"
    assert not home.exists()


def test_forensics_home_default_is_user_cache(monkeypatch):
    import platformdirs

    monkeypatch.delenv("FORENSICS_HOME")
    assert W.forensics_home() == Path(platformdirs.user_cache_dir("forensics"))


def test_sha256_file(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(PAYLOAD)
    assert W.sha256_file(p, chunk=1000) == PAYLOAD_SHA


def test_source_validation():
    with pytest.raises(ValueError):
        src("ftp://example.com/x")
    with pytest.raises(ValueError):
        src("https://example.com/x", filename="../evil.pth")
    with pytest.raises(ValueError):
        src("https://example.com/x", sha256="abc")
    with pytest.raises(ValueError):
        src("https://example.com/x", surprise=1)
    assert src("gdrive://" + DRIVE_ID).url == "gdrive://" + DRIVE_ID
    assert src(None, sha256=PAYLOAD_SHA.upper()).sha256 == PAYLOAD_SHA


@pytest.mark.parametrize("url", [
    f"gdrive://{DRIVE_ID}",
    f"https://drive.google.com/file/d/{DRIVE_ID}/view?usp=share_link",
    f"https://drive.google.com/open?id={DRIVE_ID}",
    f"https://drive.google.com/uc?id={DRIVE_ID}&export=download",
    f"https://drive.usercontent.google.com/download?id={DRIVE_ID}&export=download",
])
def test_drive_file_id(url):
    assert W.drive_file_id(url) == DRIVE_ID


def test_drive_file_id_rejects_other_hosts():
    assert W.drive_file_id(f"https://example.com/file/d/{DRIVE_ID}/view") is None


# -- resolve_weights -----------------------------------------------------------------


def test_resolve_order_explicit_env_cache(tmp_path, home, monkeypatch):
    s = src("https://example.invalid/ckpt.pth", env_var="FORENSICS_TEST_WEIGHTS")
    cache = home / "weights" / "ckpt.pth"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"cache")
    env_file = tmp_path / "env.pth"
    env_file.write_bytes(b"env")
    explicit = tmp_path / "explicit.pth"
    explicit.write_bytes(b"explicit")

    assert W.resolve_weights("lipfd", s) == cache
    monkeypatch.setenv("FORENSICS_TEST_WEIGHTS", str(env_file))
    assert W.resolve_weights("lipfd", s) == env_file
    assert W.resolve_weights("lipfd", s, explicit) == explicit
    assert W.resolve_weights("lipfd", s, str(explicit)) == explicit


def test_resolve_missing_explicit_does_not_fall_through(tmp_path, home):
    s = src("https://example.invalid/ckpt.pth")
    cache = home / "weights" / "ckpt.pth"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"cache")
    missing = tmp_path / "nope.pth"
    with pytest.raises(WeightsError) as ei:
        W.resolve_weights("lipfd", s, missing)
    assert str(missing) in ei.value.message


def test_resolve_missing_env_file_does_not_fall_through(tmp_path, home, monkeypatch):
    s = src("https://example.invalid/ckpt.pth", env_var="FORENSICS_TEST_WEIGHTS")
    cache = home / "weights" / "ckpt.pth"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"cache")
    monkeypatch.setenv("FORENSICS_TEST_WEIGHTS", str(tmp_path / "gone.pth"))
    with pytest.raises(WeightsError) as ei:
        W.resolve_weights("lipfd", s)
    assert "FORENSICS_TEST_WEIGHTS" in ei.value.message and "gone.pth" in ei.value.message


def test_resolve_nothing_found_says_how_to_get_them(home):
    s = src("gdrive://" + DRIVE_ID, env_var="FORENSICS_TEST_WEIGHTS", homepage="https://github.com/AaronComo/LipFD")
    with pytest.raises(WeightsError) as ei:
        W.resolve_weights("lipfd", s)
    err = ei.value
    cache = str(home / "weights" / "ckpt.pth")
    assert "forensics pull lipfd" in err.message and cache in err.message
    assert "forensics pull lipfd" in err.hint and cache in err.hint
    assert "--weights PATH" in err.hint and "FORENSICS_TEST_WEIGHTS" in err.hint
    assert "https://github.com/AaronComo/LipFD" in err.hint
    assert not home.exists()


def test_resolve_cache_with_wrong_size(home):
    s = src("https://example.invalid/ckpt.pth", size=len(PAYLOAD))
    cache = home / "weights" / "ckpt.pth"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"short")
    with pytest.raises(WeightsError, match="expected"):
        W.resolve_weights("lipfd", s)


# -- download --------------------------------------------------------------------------


def test_download_plain_with_checks_and_progress(server, home, capsys):
    s = src(server.base + "/file.bin", sha256=PAYLOAD_SHA, size=len(PAYLOAD))
    out = W.download(s, progress=True, timeout=5)
    assert out == home / "weights" / "ckpt.pth"
    assert out.read_bytes() == PAYLOAD
    assert leftovers(out.parent) == ["ckpt.pth", "ckpt.pth.json"]
    assert "ckpt.pth" in capsys.readouterr().err  # the tqdm bar went to stderr


def test_download_resumes_after_dropped_connection(server, home):
    s = src(server.base + "/flaky.bin", sha256=PAYLOAD_SHA, size=len(PAYLOAD))
    part = home / "weights" / "ckpt.pth.part"
    with pytest.raises(WeightsError) as ei:
        W.download(s, progress=False, timeout=5, detector_id="lipfd")
    assert "forensics pull lipfd" in ei.value.hint and str(part) in ei.value.hint
    assert part.is_file() and 0 < part.stat().st_size < len(PAYLOAD)
    got = part.stat().st_size
    assert not (home / "weights" / "ckpt.pth").exists()

    out = W.download(s, progress=False, timeout=5)
    assert out.read_bytes() == PAYLOAD
    assert server.state["log"][-1]["range"] == f"bytes={got}-"
    assert leftovers(out.parent) == ["ckpt.pth", "ckpt.pth.json"]


def _resume_state(d: Path, data: bytes, url: str) -> None:
    """What an interrupted download leaves beside its .part: the server's validator."""
    etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
    (d / "ckpt.pth.part.json").write_text(json.dumps({"source": url, "total": len(data), "etag": etag}))


def test_download_restarts_when_server_ignores_range(server, home):
    d = home / "weights"
    d.mkdir(parents=True)
    (d / "ckpt.pth.part").write_bytes(b"garbage-prefix")
    _resume_state(d, PAYLOAD, server.base + "/norange.bin")
    out = W.download(src(server.base + "/norange.bin", sha256=PAYLOAD_SHA), progress=False, timeout=5)
    assert server.state["log"][-1]["range"] == "bytes=14-"
    assert out.read_bytes() == PAYLOAD
    assert leftovers(d) == ["ckpt.pth", "ckpt.pth.json"]


def test_a_part_without_a_validator_is_never_resumed(server, home):
    """Without the server's ETag/Last-Modified nothing says the .part is a prefix of today's file."""
    d = home / "weights"
    d.mkdir(parents=True)
    (d / "ckpt.pth.part").write_bytes(PAYLOAD[:1000])
    out = W.download(src(server.base + "/file.bin"), progress=False, timeout=5)
    assert server.state["log"][-1]["range"] is None and out.read_bytes() == PAYLOAD


def test_download_part_already_complete_416(server, home):
    d = home / "weights"
    d.mkdir(parents=True)
    (d / "ckpt.pth.part").write_bytes(PAYLOAD)
    _resume_state(d, PAYLOAD, server.base + "/file.bin")
    out = W.download(src(server.base + "/file.bin", sha256=PAYLOAD_SHA), progress=False, timeout=5)
    assert out.read_bytes() == PAYLOAD
    assert server.state["log"][-1]["range"] == f"bytes={len(PAYLOAD)}-"
    assert server.state["log"][-1]["if_range"] is not None
    assert leftovers(d) == ["ckpt.pth", "ckpt.pth.json"]


def test_download_explicit_dest(server, tmp_path, home):
    dest = tmp_path / "elsewhere" / "w.pth"
    assert W.download(src(server.base + "/file.bin"), dest, progress=False, timeout=5) == dest
    assert dest.read_bytes() == PAYLOAD
    assert leftovers(dest.parent) == ["w.pth", "w.pth.json"]
    assert not home.exists()


def test_download_sha256_mismatch_leaves_nothing(server, home):
    s = src(server.base + "/file.bin", sha256="0" * 64)
    with pytest.raises(WeightsError, match="sha256"):
        W.download(s, progress=False, timeout=5)
    assert leftovers(home / "weights") == []


def test_download_size_mismatch_leaves_nothing(server, home):
    for size in (len(PAYLOAD) + 10, len(PAYLOAD) - 10):
        with pytest.raises(WeightsError, match="bytes"):
            W.download(src(server.base + "/file.bin", size=size), progress=False, timeout=5)
        assert leftovers(home / "weights") == []


def test_download_http_error(server, home):
    s = src(server.base + "/missing.bin", homepage="https://example.invalid/get-it")
    with pytest.raises(WeightsError, match="404") as ei:
        W.download(s, progress=False, timeout=5)
    assert "https://example.invalid/get-it" in ei.value.hint
    assert leftovers(home / "weights") == []


def test_download_without_url_is_manual_only(home):
    with pytest.raises(WeightsError) as ei:
        W.download(src(None, homepage="https://example.invalid/get-it"))
    assert "https://example.invalid/get-it" in ei.value.hint


# -- Google Drive ----------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    f"gdrive://{DRIVE_ID}",
    f"https://drive.google.com/file/d/{DRIVE_ID}/view?usp=share_link",
])
def test_drive_confirmation_form(drive, home, url):
    out = W.download(src(url, sha256=PAYLOAD_SHA), progress=False, timeout=5)
    assert out.read_bytes() == PAYLOAD
    log = drive.state["log"]
    assert [e["path"] for e in log] == ["/drive/download", "/drive/download"]
    assert log[0]["query"] == {"id": DRIVE_ID, "export": "download"}
    assert log[1]["query"] == {"id": DRIVE_ID, "export": "download", "confirm": "t", "uuid": UUID}
    assert leftovers(out.parent) == ["ckpt.pth", "ckpt.pth.json"]


def test_drive_download_warning_cookie(drive, home):
    out = W.download(src("gdrive://cookiecookiecookie"), progress=False, timeout=5)
    assert out.read_bytes() == PAYLOAD
    assert drive.state["log"][-1]["query"]["confirm"] == "TOKEN42"


def test_drive_quota_exceeded(drive, home):
    s = src("gdrive://quotaquotaquota", homepage="https://github.com/AaronComo/LipFD")
    with pytest.raises(WeightsError) as ei:
        W.download(s, progress=False, timeout=5)
    assert "Too many users have viewed or downloaded this file recently" in ei.value.message
    assert "https://github.com/AaronComo/LipFD" in ei.value.hint
    assert leftovers(home / "weights") == []


def test_drive_unknown_file(drive, home):
    with pytest.raises(WeightsError, match="Not Found"):
        W.download(src("gdrive://doesnotexist0"), progress=False, timeout=5)


# -- pull --------------------------------------------------------------------------------


def test_pull_uses_cache_when_hash_matches(server, home):
    s = src(server.base + "/file.bin", sha256=PAYLOAD_SHA)
    assert W.pull("lipfd", s, progress=False).read_bytes() == PAYLOAD
    assert len(server.state["log"]) == 1
    assert W.pull("lipfd", s, progress=False) == home / "weights" / "ckpt.pth"
    assert len(server.state["log"]) == 1  # no second request
    W.pull("lipfd", s, force=True, progress=False)
    assert len(server.state["log"]) == 2


def test_pull_replaces_corrupt_cache(server, home):
    s = src(server.base + "/file.bin", sha256=PAYLOAD_SHA)
    cache = home / "weights" / "ckpt.pth"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"corrupt")
    assert W.pull("lipfd", s, progress=False).read_bytes() == PAYLOAD
    assert leftovers(cache.parent) == ["ckpt.pth", "ckpt.pth.json"]


def test_module_imports_no_heavy_deps():
    import subprocess
    import sys

    code = ("import sys, forensics_core.weights; "
            "bad = [m for m in ('requests', 'tqdm', 'torch') if m in sys.modules]; "
            "sys.exit(1 if bad else 0)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=30).returncode == 0


# -- the CLI -------------------------------------------------------------------------


def test_cli_pull_downloads_into_the_cache_and_reuses_it(server, home):
    from click.testing import CliRunner

    from forensics_core.cli import main
    from forensics_core.testing import FakeDetector, registered

    class WithWeights(FakeDetector):
        card = FakeDetector.card.model_copy(update={
            "id": "PULL-TEST", "aliases": [],
            "weights": src(server.base + "/file.bin", filename="pull_test.bin", sha256=PAYLOAD_SHA, size=len(PAYLOAD))})

    with registered(WithWeights, name="pull-test"):
        runner = CliRunner()
        first = runner.invoke(main, ["pull", "pull-test", "--quiet"])
        assert first.exit_code == 0, first.output
        path = home / "weights" / "pull_test.bin"
        assert first.stdout.strip() == str(path) and path.read_bytes() == PAYLOAD
        again = runner.invoke(main, ["pull", "PULL-TEST", "--quiet"])
        assert again.exit_code == 0 and server.state["hits"]["/file.bin"] == 1  # cached file verified, not fetched again
        missing = runner.invoke(main, ["pull", "NOPE"])
        assert missing.exit_code == 4 and "unknown detector" in missing.stderr


# -- hostile servers: nothing unverified ever enters the cache -----------------------------


def _refused(s, home, match, **kw):
    with pytest.raises(WeightsError, match=match) as info:
        W.download(s, progress=False, timeout=5, **kw)
    assert info.value.hint  # how to get the file by hand
    assert leftovers(home / "weights") == [], "something unverified was left in the cache"
    return info.value


def test_an_html_page_is_never_a_checkpoint(server, home):
    _refused(src(server.base + "/page.bin"), home, "text/html page")
    assert [e["path"] for e in server.state["log"]] == ["/page.bin"]  # its "download anyway" form was not followed


def test_an_encoded_body_is_refused_not_inflated(server, home):
    err = _refused(src(server.base + "/gzip.bin"), home, "Content-Encoding 'gzip'")
    assert "identity" in err.message
    assert server.state["log"][0]["accept_encoding"] == "identity"


def test_a_truncated_body_is_refused(server, home):
    ckpt()  # made before the server needs it (importing torch in its thread could outlast the timeout)
    _refused(src(server.base + "/truncated.bin"), home, "truncated|IncompleteRead|Connection broken", validate=load_check)


def test_a_content_length_lie_cannot_pass_as_the_checkpoint(server, home):
    ckpt()
    _refused(src(server.base + "/lie.bin"), home, "not a usable checkpoint", validate=load_check)


def test_an_announced_size_over_the_ceiling_is_refused_before_reading(server, home):
    _refused(src(server.base + "/huge.bin"), home, "ceiling")


def test_bytes_read_are_capped_without_any_announced_length(server, home):
    _refused(src(server.base + "/endless.bin"), home, "larger than the 100000 bytes allowed", max_bytes=100_000)


def test_the_whole_download_has_a_deadline(server, home):
    started = time.monotonic()
    _refused(src(server.base + "/drip.bin"), home, "deadline", deadline=1.0)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("route", ["/versions.bin", "/versions-ignores-if-range.bin", "/versions-no-validator.bin"])
def test_a_resume_is_never_spliced_from_two_versions(server, home, route):
    """Version A breaks off halfway, then the server has version B: the result is B, whole."""
    s = src(server.base + route)
    with pytest.raises(WeightsError):
        W.download(s, progress=False, timeout=5)
    out = W.download(s, progress=False, timeout=5)
    assert out.read_bytes() == VERSION_B
    second = server.state["log"][1]
    if route == "/versions-no-validator.bin":
        assert second["range"] is None  # nothing to resume with: started over
    else:
        assert second["range"] == f"bytes={len(VERSION_A) // 2}-" and second["if_range"] in ('"A"', "Mon, 01 Jan 2024 00:00:00 GMT")
    assert leftovers(out.parent) == ["ckpt.pth", "ckpt.pth.json"]


def test_drive_confirmation_is_followed_only_to_google(drive, home):
    _refused(src("gdrive://offsiteoffsite"), home, "points outside Google")
    assert len(drive.state["log"]) == 1


def test_drive_pages_are_read_only_on_drive_hosts(server, home, monkeypatch):
    """A Drive source redirected (here: configured) elsewhere: that host's HTML is not a Drive page."""
    monkeypatch.setattr(W.fetch, "DRIVE_DOWNLOAD_URL", "https://drive.usercontent.google.com/download")
    monkeypatch.setattr(W.fetch, "_on_drive", lambda url: url.startswith("https://"))  # 127.0.0.1 is not Google
    _refused(src(server.base + "/page.bin"), home, "text/html page")


def test_the_detectors_check_runs_before_the_file_enters_the_cache(server, home):
    calls = []

    def reject(path):
        calls.append(path)
        assert path.name == "ckpt.pth.part"  # checked in place, before the move
        raise WeightsError("wrong keys")

    _refused(src(server.base + "/file.bin"), home, "not a usable checkpoint: wrong keys", validate=reject)
    assert len(calls) == 1


def test_the_sha256_is_recorded_and_a_corrupt_cached_file_is_replaced(server, home):
    s = src(server.base + "/file.bin")
    out = W.pull("lipfd", s, progress=False)
    record = json.loads((out.parent / "ckpt.pth.json").read_text())
    assert record["sha256"] == PAYLOAD_SHA and record["size"] == len(PAYLOAD) and record["source"] == s.url
    assert W.weights_sha256(out) == PAYLOAD_SHA and W.pull("lipfd", s, progress=False) == out
    assert len(server.state["log"]) == 1  # the good cached copy was kept

    st = out.stat()  # one flipped byte, size and mtime kept: only the hash can tell
    data = bytearray(out.read_bytes())
    data[1000] ^= 0xFF
    out.write_bytes(bytes(data))
    os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert W.pull("lipfd", s, progress=False).read_bytes() == PAYLOAD
    assert len(server.state["log"]) == 2

    out.write_bytes(b"truncated")  # changed behind the record's back: not trusted, downloaded again
    assert W.pull("lipfd", s, progress=False).read_bytes() == PAYLOAD
    assert len(server.state["log"]) == 3


def test_a_file_placed_by_hand_is_checked_by_loading_then_recorded(server, home):
    cache = home / "weights" / "ckpt.pth"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(ckpt())
    s = src(server.base + "/page.bin")  # any download would be refused: none must happen
    assert W.pull("lipfd", s, progress=False, validate=load_check) == cache
    assert server.state["log"] == []
    assert json.loads((cache.parent / "ckpt.pth.json").read_text())["sha256"] == hashlib.sha256(ckpt()).hexdigest()
    cache.write_bytes(ckpt()[:-100])  # a bad one is not kept
    _refused_pull = pytest.raises(WeightsError, match="text/html page")
    with _refused_pull:
        W.pull("lipfd", s, progress=False, validate=load_check)


def test_cli_pull_runs_the_detectors_check_and_models_shows_the_sha256(server, home):
    from click.testing import CliRunner

    from forensics_core.cli import main
    from forensics_core.testing import FakeDetector, registered

    class Checked(FakeDetector):
        card = FakeDetector.card.model_copy(update={"id": "PULL-CHECKED", "aliases": [],
                                                    "weights": src(server.base + "/page.bin", filename="checked.pth")})
        check_weights = staticmethod(load_check)

    class Good(FakeDetector):
        card = FakeDetector.card.model_copy(update={"id": "PULL-GOOD", "aliases": [],
                                                    "weights": src(server.base + "/file.bin", filename="good.bin")})

        @staticmethod
        def check_weights(path):
            if Path(path).read_bytes() != PAYLOAD:
                raise WeightsError("not the payload")

    with registered(Checked, Good, name="pull-checked"):
        runner = CliRunner()
        refused = runner.invoke(main, ["pull", "PULL-CHECKED", "--quiet"])
        assert refused.exit_code == 4 and "text/html page" in refused.stderr and "hint:" in refused.stderr
        assert leftovers(home / "weights") == []
        before = json.loads(runner.invoke(main, ["models", "--json"]).stdout)
        assert {m["id"]: m for m in before}["PULL-GOOD"]["weights_cache"]["present"] is False
        pulled = runner.invoke(main, ["pull", "PULL-GOOD", "--quiet"])
        assert pulled.exit_code == 0 and f"sha256 {PAYLOAD_SHA}" in pulled.stderr, pulled.output
        listed = runner.invoke(main, ["models"])
        assert f"weights: {home / 'weights' / 'good.bin'} (sha256 {PAYLOAD_SHA})" in listed.stdout
        cards = {m["id"]: m for m in json.loads(runner.invoke(main, ["models", "--json"]).stdout)}
        assert cards["PULL-GOOD"]["weights_cache"]["sha256"] == PAYLOAD_SHA


def test_weights_are_hashed_once_per_file_version(home, tmp_path):
    """Results name their weights by sha256; a file is hashed once, then its record is read."""
    from forensics_core.weights import cache

    w = tmp_path / "w.bin"
    w.write_bytes(PAYLOAD)
    assert W.weights_sha256(w) == PAYLOAD_SHA
    records = list((home / "weights" / "hashes").iterdir())
    assert len(records) == 1 and json.loads(records[0].read_text())["sha256"] == PAYLOAD_SHA
    cache._HASHES.clear()  # another process: read from the record, the file is not hashed again
    records[0].write_text(records[0].read_text().replace(PAYLOAD_SHA, "a" * 64))
    assert W.weights_sha256(w) == "a" * 64
    w.write_bytes(PAYLOAD[::-1])  # a new version of the file: a new key, hashed afresh
    assert W.weights_sha256(w) == hashlib.sha256(PAYLOAD[::-1]).hexdigest()
    assert leftovers(tmp_path) == ["home", "w.bin"]  # nothing beside the weights

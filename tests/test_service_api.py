"""The service's API through real HTTP: a real ``forensics serve`` on 127.0.0.1, real uploads, real workers.

The detectors are the fast test ones, installed as a plugin (service_fixtures.py),
so the server and the CLI find them as they find any detector.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from media_fixtures import make_clip
from service_fixtures import free_port, wait_for

TIMING = {"processing_time", "timings"}
SECRET = "test-webhook-secret"


def _strip(obj, drop=TIMING):
    if isinstance(obj, dict):
        return {k: _strip(v, drop) for k, v in obj.items() if k not in drop}
    if isinstance(obj, list):
        return [_strip(v, drop) for v in obj]
    return obj


class Receiver:
    """A webhook receiver on 127.0.0.1 that records every delivery."""

    def __init__(self):
        self.deliveries: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.deliveries.append({"headers": dict(self.headers), "body": body})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def for_job(self, job_id: str) -> list[dict]:
        return [d for d in self.deliveries if json.loads(d["body"])["id"] == job_id]


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("service_media")
    make_clip(root / "clip.mp4", seconds=1.0, size=(160, 120))
    make_clip(root / "silent.mp4", seconds=1.0, size=(160, 120), audio=False)
    (root / "notes.mp4").write_text("This is not a video.\n" * 40)
    (root / "empty.mp4").write_bytes(b"")
    return root


@pytest.fixture(scope="module")
def api(module_services, receiver, media):
    svc = module_services("--models", "FAKE-VISUAL", "--models", "FAKE-AUDIO", "--models", "FAKE-SLOW", "--workers", "2",
                          "--lease-s", "2", "--housekeeping-s", "0.5", "--allow-root", str(media),
                          "--webhook-host", f"127.0.0.1:{receiver.server.server_port}",
                          env={"FORENSICS_WEBHOOK_SECRET": SECRET}, name="api")
    svc.key = svc.new_key("alice")
    svc.client = httpx.Client(base_url=svc.url, headers={"Authorization": f"Bearer {svc.key}"}, timeout=30)
    yield svc
    svc.client.close()


def submit(client, path, **fields):
    files = {"file": (fields.pop("filename", path.name), path.read_bytes(), "application/octet-stream")}
    data = {k: (json.dumps(v) if k == "options" else v) for k, v in fields.items()}
    return client.post("/v1/analyses", files=files, data=data)


def cli_json(svc, *args) -> dict:
    return json.loads(svc.cli("analyze", *map(str, args), "--json", "--quiet", check=False).stdout)


# --------------------------------------------------------------------------- the main path
def test_upload_poll_and_the_result_equals_the_cli(api, media):
    resp = submit(api.client, media / "clip.mp4", models="FAKE-VISUAL", options={"frames": 4})
    assert resp.status_code == 202, resp.text
    job = resp.json()
    assert resp.headers["Location"] == job["links"]["self"] == f"/v1/analyses/{job['id']}"
    assert job["status"] in ("queued", "running") and job["media"] == {"name": "clip.mp4", "bytes": (media / "clip.mp4").stat().st_size}
    done = wait_for(api.client, resp.headers["Location"])
    assert done["status"] == "succeeded" and done["progress"] == 1.0 and done["attempts"] == 1 and done["error"] is None
    cli = cli_json(api, media / "clip.mp4", "--model", "FAKE-VISUAL", "-o", "frames=4")
    assert done["result"]["media_path"] == "clip.mp4"  # the client's name; never the spool's path
    assert _strip(done["result"], TIMING | {"media_path"}) == _strip(cli, TIMING | {"media_path"})
    assert done["result"]["frames_analyzed"] == 4
    report = api.client.get(done["links"]["report"])
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert "clip.mp4" in report.text and str(api.home) not in report.text and "default-src 'none'" in report.headers["Content-Security-Policy"]
    assert not re.search(r"""(src|href)=["']https?:""", report.text)  # self-contained


def test_an_ensemble_result_equals_the_cli(api, media):
    resp = submit(api.client, media / "silent.mp4", models="fake-visual, FAKE-AUDIO", combine="max")
    done = wait_for(api.client, resp.headers["Location"])
    cli = cli_json(api, media / "silent.mp4", "--model", "FAKE-VISUAL", "--model", "FAKE-AUDIO", "--combine", "max")
    assert done["status"] == "succeeded" and done["models"] == ["FAKE-VISUAL", "FAKE-AUDIO"]
    assert [r["status"] for r in done["result"]["results"]] == ["ok", "abstained"]
    assert _strip(done["result"], TIMING | {"media_path"}) == _strip(cli, TIMING | {"media_path"})


def test_a_path_under_an_allowed_root_gives_exactly_the_clis_document(api, media):
    resp = api.client.post("/v1/analyses", files={"path": (None, str(media / "clip.mp4"))}, data={"models": "FAKE-VISUAL"})
    assert resp.status_code == 202, resp.text
    done = wait_for(api.client, resp.headers["Location"])
    assert _strip(done["result"]) == _strip(cli_json(api, media / "clip.mp4", "--model", "FAKE-VISUAL"))
    outside = api.client.post("/v1/analyses", files={"path": (None, str(media / ".." / "elsewhere.mp4"))})
    assert outside.status_code == 403 and outside.json()["error"]["code"] == "path_not_allowed"


@pytest.mark.parametrize("name,code", [("notes.mp4", "no_video_stream"), ("empty.mp4", "empty_file")])
def test_a_media_error_is_a_failed_job_with_the_typed_code(api, media, name, code):
    resp = submit(api.client, media / name, models="FAKE-VISUAL")
    assert resp.status_code == 202
    done = wait_for(api.client, resp.headers["Location"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == code and done["error"]["hint"]
    assert str(api.home) not in json.dumps(done)  # no server path in any message
    cli = cli_json(api, media / name, "--model", "FAKE-VISUAL")
    assert done["result"]["error"]["code"] == cli["error"]["code"] == code
    assert done["result"]["error"]["message"] == cli["error"]["message"].replace(str(media / name), name)


# --------------------------------------------------------------------------- keys and isolation
def test_keys_isolate_jobs(api, media):
    job = submit(api.client, media / "clip.mp4", models="FAKE-VISUAL").json()
    href = job["links"]["self"]
    anon = httpx.get(api.url + href)
    assert anon.status_code == 401 and anon.headers["WWW-Authenticate"] == "Bearer"
    assert anon.json()["error"]["code"] == "unauthorized"
    assert httpx.get(api.url + href, headers={"Authorization": "Bearer fsk_not-a-key"}).status_code == 401
    bob = httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {api.new_key('bob')}"})
    for method, url in [("GET", href), ("GET", href + "/report"), ("POST", href + "/cancel"), ("DELETE", href)]:
        resp = bob.request(method, url)
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found", (method, url)
    assert job["id"] not in {j["id"] for j in bob.get("/v1/analyses").json()["items"]}
    assert wait_for(api.client, href)["status"] == "succeeded"  # bob's DELETE did nothing
    api.cli("serve", "keys", "revoke", "bob")
    assert bob.get("/v1/analyses").status_code == 401
    listed = api.cli("serve", "keys", "list", "--json").stdout
    assert "bob" in listed and "key_hash" not in listed and api.key not in listed


def test_idempotency_key_returns_the_same_job(api, media):
    headers = {"Idempotency-Key": "upload-42"}
    client = httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {api.new_key('idem')}"})
    first = client.post("/v1/analyses", files={"file": ("clip.mp4", (media / "clip.mp4").read_bytes())},
                        data={"models": "FAKE-VISUAL"}, headers=headers)
    again = client.post("/v1/analyses", files={"file": ("clip.mp4", (media / "clip.mp4").read_bytes())},
                        data={"models": "FAKE-VISUAL"}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    assert client.get("/v1/analyses").json()["total"] == 1


def test_the_list_is_paged_and_filtered(api, media):
    client = httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {api.new_key('pager')}"})
    ids = [submit(client, media / "clip.mp4", models="FAKE-VISUAL").json()["id"] for _ in range(3)]
    first = client.get("/v1/analyses", params={"limit": 2}).json()
    assert first["total"] == 3 and len(first["items"]) == 2 and first["next_offset"] == 2
    second = client.get("/v1/analyses", params={"limit": 2, "offset": 2}).json()
    assert second["next_offset"] is None
    assert [j["id"] for j in first["items"] + second["items"]] == ids[::-1]  # newest first
    for i in ids:
        wait_for(client, f"/v1/analyses/{i}")
    assert client.get("/v1/analyses", params={"status": "succeeded"}).json()["total"] == 3
    assert client.get("/v1/analyses", params={"status": "bogus"}).status_code == 422


def test_delete_removes_a_running_job_and_its_upload(api, media):
    job = submit(api.client, media / "clip.mp4", models="FAKE-SLOW", options={"seconds": 3}).json()
    href = job["links"]["self"]
    wait_for(api.client, href, states=("running",))
    assert len(api.spool_files()) >= 1
    assert api.client.delete(href).status_code == 204
    assert api.client.get(href).status_code == 404
    time.sleep(3.5)  # the worker finishes its sleep, finds the job gone, and drops the result
    assert api.client.get(href).status_code == 404
    assert not [p for p in api.spool_files() if job["id"] in p.name]


def test_cancel_keeps_the_job_as_cancelled(api, media):
    job = submit(api.client, media / "clip.mp4", models="FAKE-SLOW", options={"seconds": 2}).json()
    href = job["links"]["self"]
    wait_for(api.client, href, states=("running",))
    cancelled = api.client.post(href + "/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["result"] is None
    time.sleep(2.5)
    assert api.client.get(href).json()["status"] == "cancelled"  # the worker's late result was dropped
    assert api.client.get(href + "/report").status_code == 409


def test_an_upload_named_dotdot_stays_in_the_spool(api, media):
    job = submit(api.client, media / "clip.mp4", models="FAKE-SLOW", options={"seconds": 1.5}, filename="../../x").json()
    assert job["media"]["name"] == "x"
    wait_for(api.client, job["links"]["self"], states=("running",))
    spool = api.home / "service" / "spool"
    names = [p.name for p in api.spool_files()]
    assert names and all(re.fullmatch(r"[0-9a-f]{32}\.(bin|mp4|html)", n) for n in names), names
    assert not (spool / ".." / ".." / "x").exists() and not (spool.parent / "x").exists()
    done = wait_for(api.client, job["links"]["self"])
    assert done["status"] == "succeeded" and done["result"]["media_path"] == "x"


# --------------------------------------------------------------------------- refused requests
@pytest.mark.parametrize("fields,status,code", [
    ({"models": "NOPE"}, 422, "unknown_detector"),
    ({"models": "FAKE-VISUAL", "options": {"frame": 3}}, 422, "invalid_options"),
    ({"models": "FAKE-VISUAL", "options": {"audio_path": "/etc/passwd"}}, 422, "option_not_allowed"),
    ({"models": "FAKE-VISUAL", "options": "{not json"}, 422, "invalid_options"),
    ({"models": "FAKE-VISUAL", "combine": "median"}, 422, "invalid_request"),
    ({"models": "FAKE-VISUAL", "callback_url": "http://169.254.169.254/latest"}, 422, "callback_not_allowed"),
])
def test_bad_submissions_get_a_typed_4xx_and_store_nothing(api, media, fields, status, code):
    before = api.client.get("/v1/analyses").json()["total"]
    resp = api.client.post("/v1/analyses", files={"file": ("clip.mp4", (media / "clip.mp4").read_bytes())},
                           data={k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()})
    assert resp.status_code == status and resp.json()["error"]["code"] == code, resp.text
    assert resp.json()["error"]["message"]
    assert api.client.get("/v1/analyses").json()["total"] == before


def test_malformed_bodies_are_4xx(api):
    assert api.client.post("/v1/analyses", content=b"{}", headers={"Content-Type": "application/json"}).status_code == 415
    assert api.client.post("/v1/analyses", content=b"--x\r\ngarbage",
                           headers={"Content-Type": "multipart/form-data; boundary=x"}).status_code == 400
    assert api.client.post("/v1/analyses", data={"models": "FAKE-VISUAL"}, files={"x": ("a", b"1")}).status_code == 422
    assert api.client.get("/v1/analyses/not-an-id").status_code in (404, 422)


# --------------------------------------------------------------------------- detectors, health, webhooks
def test_detectors_health_and_readiness(api):
    assert httpx.get(api.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(api.url + "/readyz").json()
    assert ready["status"] == "ready" and ready["workers_ready"] == 2
    assert ready["models_loaded"] == ["FAKE-AUDIO", "FAKE-SLOW", "FAKE-VISUAL"]
    assert httpx.get(api.url + "/v1/detectors").status_code == 401
    dets = {d["id"]: d for d in api.client.get("/v1/detectors").json()["detectors"]}
    assert dets["FAKE-VISUAL"]["served"] and dets["FAKE-VISUAL"]["loaded"] and dets["FAKE-VISUAL"]["weights"] is None
    lipfd = dets["LIPFD-V1"]
    assert not lipfd["served"] and not lipfd["loaded"] and lipfd["card"]["modalities"] == ["video", "audio"]
    assert lipfd["weights"]["present"] is False and "LIPFD" in lipfd["weights"]["problem"].upper()


def test_webhooks_are_signed_and_sent_once(api, media, receiver):
    resp = submit(api.client, media / "clip.mp4", models="FAKE-VISUAL", callback_url=receiver.url)
    job = wait_for(api.client, resp.headers["Location"])
    deadline = time.monotonic() + 15
    while not receiver.for_job(job["id"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    (delivery,) = receiver.for_job(job["id"])
    headers, body = delivery["headers"], delivery["body"]
    expected = hmac.new(SECRET.encode(), headers["X-Forensics-Timestamp"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert headers["X-Forensics-Signature"] == f"sha256={expected}"
    payload = json.loads(body)
    assert payload["status"] == "succeeded" and payload["href"] == job["links"]["self"] and "result" not in payload


# --------------------------------------------------------------------------- limits
@pytest.fixture(scope="module")
def tight(module_services):
    """No workers (jobs stay queued), a queue of 3, uploads of 1 MiB at most, a spool of 1 060 000 bytes."""
    svc = module_services("--models", "FAKE-VISUAL", "--workers", "0", "--queue-size", "3", "--max-upload-mb", "1",
                          "--spool-quota-mb", str(1_060_000 / 2**20), wait="/healthz", name="tight")
    svc.client = httpx.Client(base_url=svc.url, headers={"Authorization": f"Bearer {svc.new_key()}"}, timeout=30)
    yield svc
    svc.client.close()


def _raw_post(svc, head: str, body_parts) -> bytes:
    """Send a request by hand (headers, then only some body); return the first bytes of the answer."""
    with socket.create_connection(("127.0.0.1", svc.port), timeout=10) as s:
        s.sendall(head.encode())
        for part in body_parts:
            s.sendall(part)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _length(answer):
            more = s.recv(65536)
            if not more:
                break
            answer += more
        return answer


def _length(answer: bytes) -> int:
    m = re.search(rb"content-length: (\d+)", answer, re.IGNORECASE)
    return int(m.group(1)) if m else 0


def _head(svc, extra: str) -> str:
    return ("POST /v1/analyses HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: {svc.client.headers['Authorization']}\r\n"
            "Content-Type: multipart/form-data; boundary=BOUNDARY\r\n" + extra + "\r\n")


PART = b'--BOUNDARY\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'


def test_an_oversized_upload_gets_413_before_its_body_is_read(tight):
    answer = _raw_post(tight, _head(tight, f"Content-Length: {50 * 2**20}\r\n"), [PART + b"\0" * 1000])
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"upload_too_large" in answer
    assert tight.spool_files() == []
    # no length announced (chunked): refused once past the cap, and what was written is deleted
    chunk = b"\0" * 65536
    chunks = [PART] + [chunk] * 40  # 2.5 MiB, over the 1 MiB cap; the closing chunk is never sent
    framed = [f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks]
    answer = _raw_post(tight, _head(tight, "Transfer-Encoding: chunked\r\n"), framed)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    time.sleep(0.2)
    assert tight.spool_files() == []


def test_a_full_spool_gets_507_and_a_full_queue_429_with_retry_after(tight, media):
    ids = []
    for _ in range(2):
        resp = submit(tight.client, media / "clip.mp4", models="FAKE-VISUAL")
        assert resp.status_code == 202, resp.text
        ids.append(resp.json()["id"])
    big = media.parent / "big.bin"
    big.write_bytes(b"\1" * 1_040_000)  # under the upload cap, over what the spool has left
    over = submit(tight.client, big, models="FAKE-VISUAL")
    assert over.status_code == 507 and over.json()["error"]["code"] == "spool_full", over.text
    assert len(tight.spool_files()) == 2
    ids.append(submit(tight.client, media / "clip.mp4", models="FAKE-VISUAL").json()["id"])
    full = submit(tight.client, media / "clip.mp4", models="FAKE-VISUAL")
    assert full.status_code == 429 and full.json()["error"]["code"] == "queue_full"
    assert int(full.headers["Retry-After"]) >= 1
    assert len(tight.spool_files()) == 3  # the refused upload was not stored
    for job_id in ids:
        assert tight.client.delete(f"/v1/analyses/{job_id}").status_code == 204
    assert tight.spool_files() == []
    assert httpx.get(tight.url + "/readyz").status_code == 503  # no worker: not ready, but serving


def test_retention_deletes_finished_jobs(services, media):
    svc = services("--models", "FAKE-VISUAL", "--retention-hours", str(1.5 / 3600), "--housekeeping-s", "0.2")
    client = httpx.Client(base_url=svc.url, headers={"Authorization": f"Bearer {svc.new_key()}"})
    href = submit(client, media / "clip.mp4", models="FAKE-VISUAL").headers["Location"]
    job = wait_for(client, href)
    assert job["status"] == "succeeded" and job["expires_at"]
    deadline = time.monotonic() + 10
    while client.get(href).status_code != 404 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert client.get(href).status_code == 404
    assert svc.spool_files() == []


def test_serve_stops_before_binding_when_a_model_cannot_load(services):
    svc = services("--models", "LIPFD-V1", start=False, name="noweights")
    env = {k: v for k, v in svc.env.items() if k != "FORENSICS_LIPFD_WEIGHTS"}
    svc.env = env
    missing = svc.cli("serve", "--port", str(svc.port), "--models", "LIPFD-V1", check=False)
    assert missing.returncode == 4 and "error [weights_error]" in missing.stderr and "hint:" in missing.stderr
    unknown = svc.cli("serve", "--port", str(svc.port), "--models", "NO-SUCH", check=False)
    assert unknown.returncode == 4 and "unknown_detector" in unknown.stderr
    created = svc.cli("serve", "keys", "create", "--name", "ops")
    assert re.fullmatch(r"fsk_[A-Za-z0-9_-]{43}\n", created.stdout) and "ops" in created.stderr


def test_the_hosts_file_cap_lowers_the_upload_cap(monkeypatch):
    from forensics_core.service.config import ServiceConfig

    config = ServiceConfig(max_upload_bytes=2**30, database_url="sqlite:///unused.sqlite3", spool_dir="unused")
    monkeypatch.setenv("FORENSICS_MAX_FILE_MB", "0.5")
    assert config.upload_cap == 2**19
    monkeypatch.setenv("FORENSICS_MAX_FILE_MB", "0")  # 0: no host cap, the service's own applies
    assert config.upload_cap == 2**30

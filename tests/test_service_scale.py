"""Jobs survive: kill -9 and restart, two replicas on one PostgreSQL queue, Ray actors as workers.

``FAKE-SLOW`` (service_fixtures.py) notes each analysis it starts and ends in a run
log, so these tests see which process ran which upload, and how often.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from media_fixtures import make_clip
from service_fixtures import alive, free_port, wait_for
from test_service_api import SECRET, Receiver, submit


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scale_media") / "clip.mp4"
    make_clip(path, seconds=1.0, size=(160, 120))
    return path


def _runs(log: Path) -> tuple[Counter, Counter, set[int]]:
    starts, ends, pids = Counter(), Counter(), set()
    for line in log.read_text().splitlines() if log.exists() else []:
        what, pid, name = line.split()
        (starts if what == "start" else ends)[name] += 1
        pids.add(int(pid))
    return starts, ends, pids


def test_kill_9_with_jobs_queued_and_running_then_every_job_finishes_exactly_once(services, clip, tmp_path):
    receiver = Receiver()
    try:
        args = ["--models", "FAKE-SLOW", "--workers", "2", "--lease-s", "2", "--housekeeping-s", "0.3",
                "--webhook-host", f"127.0.0.1:{receiver.server.server_port}"]
        env = {"FORENSICS_WEBHOOK_SECRET": SECRET, "FORENSICS_TEST_RUN_LOG": str(tmp_path / "runs.log")}
        first = services(*args, env=env, name="restart")
        client = httpx.Client(base_url=first.url, headers={"Authorization": f"Bearer {first.new_key()}"}, timeout=30)
        ids = [submit(client, clip, models="FAKE-SLOW", options={"seconds": 2.5}, callback_url=receiver.url).json()["id"]
               for _ in range(6)]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = {i: client.get(f"/v1/analyses/{i}").json()["status"] for i in ids}
            if list(states.values()).count("running") == 2:
                break
            time.sleep(0.1)
        running = [i for i, s in states.items() if s == "running"]
        assert len(running) == 2 and list(states.values()).count("queued") == 4, states

        workers = first.kill9()
        assert len(workers) == 2
        deadline = time.monotonic() + 10
        while any(alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(w) for w in workers), "workers outlived a kill -9 of their server"
        first.fh.close()

        second = services(*args, env=env, name="restart", port=first.port)  # the same home: database and spool
        done = {i: wait_for(client, f"/v1/analyses/{i}", timeout=90) for i in ids}
        assert {j["status"] for j in done.values()} == {"succeeded"}
        assert {i: done[i]["attempts"] for i in ids} == {i: 2 if i in running else 1 for i in ids}

        deadline = time.monotonic() + 20
        while len({json.loads(d["body"])["id"] for d in receiver.deliveries}) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.1)
        finished = Counter(json.loads(d["body"])["id"] for d in receiver.deliveries)
        assert finished == Counter({i: 1 for i in ids})  # one finish per job, announced once
        starts, ends, _ = _runs(tmp_path / "runs.log")
        assert sum(ends.values()) == len(ids) and set(ends.values()) == {1}  # each upload analysed to the end once
        # the two interrupted runs started again (if the kill came before their detector began, once only)
        assert len(ids) <= sum(starts.values()) <= len(ids) + 2
        spool = second.spool_files()
        assert [p for p in spool if p.parent.name == "uploads"] == []  # every upload deleted once its job finished
        assert sorted(p.stem for p in spool) == sorted(ids)  # and one report per job, made before
    finally:
        receiver.close()


# --------------------------------------------------------------------------- PostgreSQL
def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return None


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory):
    """A PostgreSQL server of our own in a temp folder (as the ``postgres`` user when we are root)."""
    initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
    if not (initdb and postgres):
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed (.ci/run installs Debian's postgresql)")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    root = tmp_path_factory.mktemp("pg")
    as_user: dict = {}
    if os.geteuid() == 0:
        import pwd

        pw = pwd.getpwnam("postgres")
        as_user = {"user": pw.pw_uid, "group": pw.pw_gid}
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for parent in [root, *root.parents][:4]:
            os.chmod(parent, os.stat(parent).st_mode | 0o711)
    data, port = root / "data", free_port()
    made = subprocess.run([initdb, "-D", str(data), "-U", "forensics", "--auth=trust", "-E", "UTF8"], check=False,
                          capture_output=True, text=True, timeout=120, cwd=root, **as_user)
    assert made.returncode == 0, made.stderr
    server = subprocess.Popen([postgres, "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(root),
                               "-c", "fsync=off"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root,
                              **as_user)
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(f"host=127.0.0.1 port={port} user=forensics dbname=postgres", autocommit=True) as conn:
                conn.execute("CREATE DATABASE jobs")
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise
            time.sleep(0.2)
    yield f"postgresql://forensics@127.0.0.1:{port}/jobs"
    server.send_signal(signal.SIGINT)  # fast shutdown
    server.wait(timeout=30)
    shutil.rmtree(root, ignore_errors=True)


def test_two_replicas_on_one_postgres_queue_run_every_job_once(services, postgres_url, clip, tmp_path):
    spool = tmp_path / "shared-spool"
    args = ["--models", "FAKE-SLOW", "--workers", "2", "--database", postgres_url, "--spool", str(spool),
            "--lease-s", "5", "--housekeeping-s", "0.5"]
    env = {"FORENSICS_TEST_RUN_LOG": str(tmp_path / "runs.log")}
    a = services(*args, env=env, name="replica-a")
    b = services(*args, env=env, name="replica-b")
    key = a.new_key()
    clients = [httpx.Client(base_url=s.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) for s in (a, b)]
    ids = [submit(clients[n % 2], clip, models="FAKE-SLOW", options={"seconds": 0.3}).json()["id"] for n in range(24)]
    done = [wait_for(clients[n % 2 - 1], f"/v1/analyses/{i}", timeout=120) for n, i in enumerate(ids)]  # read from the other
    assert {j["status"] for j in done} == {"succeeded"} and {j["attempts"] for j in done} == {1}
    starts, ends, pids = _runs(tmp_path / "runs.log")
    assert len(ends) == 24 and set(ends.values()) == {1} and set(starts.values()) == {1}
    worker_pids = set(a.workers()) | set(b.workers())
    assert pids <= worker_pids and len(pids & set(a.workers())) >= 1 and len(pids & set(b.workers())) >= 1
    assert list(spool.rglob("*.mp4")) == []


# --------------------------------------------------------------------------- Ray
def test_ray_backend_runs_workers_as_actors(services, clip, tmp_path):
    pytest.importorskip("ray")
    ray_tmp = Path("/tmp") / f"fr{os.getpid()}"  # Ray's socket paths must stay short
    try:
        svc = services("--models", "FAKE-VISUAL", "--backend", "ray", "--workers", "1",
                       env={"RAY_TMPDIR": str(ray_tmp), "RAY_USAGE_STATS_ENABLED": "0"}, name="ray")
        client = httpx.Client(base_url=svc.url, headers={"Authorization": f"Bearer {svc.new_key()}"}, timeout=30)
        job = wait_for(client, submit(client, clip, models="FAKE-VISUAL").headers["Location"], timeout=120)
        assert job["status"] == "succeeded" and job["result"]["status"] == "ok"
        assert httpx.get(svc.url + "/readyz").json()["workers_ready"] == 1
        svc.stop()
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)

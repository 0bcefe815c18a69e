#!/usr/bin/env python
"""Load benchmark of ``forensics serve`` on 127.0.0.1 (issue #15): none lost, latencies, throughput.

Starts a real server (a subprocess, its own ``FORENSICS_HOME`` in a temporary
folder that is deleted afterwards), creates a key with the real CLI, and then:

1. ``--fast-jobs`` (200) jobs from ``--clients`` (16) concurrent clients with the
   fast test detector (``forensics_core.testing:FakeDetector``);
2. ``--lipfd-jobs`` (20) jobs with LIPFD-V1 (``--weights``, e.g. the stand-in made by
   tests/lipfd_standin.py; skipped without weights), on a fresh server.

Each client submits a job (POST, the upload of a real clip), polls it (GET every
``--poll-s``) until it has finished, and goes on to its next job. Reported per phase:
jobs lost (not ``succeeded``, or never finished), p50/p95 latency of the POSTs and of
the GETs, p50/p95 of a job's time from submission to observed finish, and jobs per
minute (first submission to last finish). Results go to stdout as JSON; a table to stderr.

Usage::

    python benchmarks/bench_service.py --weights /path/to/lipfd_standin.pth
    python benchmarks/bench_service.py --fast-jobs 200 --lipfd-jobs 0     # the fast phase only
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


class Server:
    def __init__(self, home: Path, args: list[str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "FORENSICS_HOME": str(home)}
        home.mkdir(parents=True, exist_ok=True)
        self.log = (home / f"server-{self.port}.log").open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "forensics_core", "serve", "--port", str(self.port), *args],
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.key = subprocess.run([sys.executable, "-m", "forensics_core", "serve", "keys", "create", "--name", "bench"],
                                  env=self.env, capture_output=True, text=True, check=True).stdout.strip()

    def wait_ready(self, timeout: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited ({self.proc.returncode}); see {self.log.name}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit("the server did not become ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def run_phase(server: Server, clip: Path, models: str, jobs: int, clients: int, poll_s: float,
              options: dict | None = None) -> dict:
    import httpx

    data = clip.read_bytes()
    lock = threading.Lock()
    todo = list(range(jobs))
    posts, gets, job_times, outcomes, errors = [], [], [], {}, []
    first_submit, last_done = [], []

    def client() -> None:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.key}"}, timeout=120) as c:
            while True:
                with lock:
                    if not todo:
                        return
                    todo.pop()
                t0 = time.perf_counter()
                form = {"models": models, **({"options": json.dumps(options)} if options else {})}
                try:
                    resp = c.post("/v1/analyses", files={"file": (clip.name, data, "video/mp4")}, data=form)
                except httpx.HTTPError as exc:  # the server went away (interrupted run): stop this client
                    with lock:
                        errors.append(f"POST {type(exc).__name__}")
                    return
                t1 = time.perf_counter()
                if resp.status_code != 202:
                    with lock:
                        errors.append(f"POST {resp.status_code}: {resp.text[:200]}")
                    continue
                href = resp.headers["Location"]
                job_id = resp.json()["id"]
                with lock:
                    posts.append(t1 - t0)
                    first_submit.append(t0)
                    outcomes[job_id] = "submitted"
                while True:
                    g0 = time.perf_counter()
                    try:
                        job = c.get(href).json()
                    except httpx.HTTPError as exc:
                        with lock:
                            errors.append(f"GET {type(exc).__name__}")
                        return
                    g1 = time.perf_counter()
                    with lock:
                        gets.append(g1 - g0)
                    if job["status"] in ("succeeded", "failed", "cancelled"):
                        with lock:
                            outcomes[job_id] = job["status"]
                            job_times.append(g1 - t0)
                            last_done.append(g1)
                        break
                    time.sleep(poll_s)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = (max(last_done) - min(first_submit)) if last_done else None
    ms = lambda v: None if v is None else round(v * 1000, 1)
    return {
        "models": models, "jobs": jobs, "clients": clients, "accepted": len(outcomes),
        "succeeded": sum(1 for s in outcomes.values() if s == "succeeded"),
        "lost": jobs - sum(1 for s in outcomes.values() if s == "succeeded"),
        "errors": errors[:5],
        "post_ms_p50": ms(pct(posts, 0.5)), "post_ms_p95": ms(pct(posts, 0.95)),
        "get_ms_p50": ms(pct(gets, 0.5)), "get_ms_p95": ms(pct(gets, 0.95)), "gets": len(gets),
        "job_s_p50": round(pct(job_times, 0.5), 3) if job_times else None,
        "job_s_p95": round(pct(job_times, 0.95), 3) if job_times else None,
        "wall_s": round(wall, 2) if wall else None,
        "jobs_per_minute": round(len(job_times) / wall * 60, 1) if wall else None,
        "load_avg": os.getloadavg(),
    }


def parse_option(pair: str) -> tuple[str, object]:
    key, _, raw = pair.partition("=")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fast-jobs", type=int, default=200)
    ap.add_argument("--lipfd-jobs", type=int, default=20)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2, help="worker processes of the fast phase")
    ap.add_argument("--lipfd-workers", type=int, default=1, help="worker processes of the LIPFD-V1 phase (each loads the model)")
    ap.add_argument("--weights", default=os.environ.get("FORENSICS_TEST_WEIGHTS"), help="LIPFD-V1 weights")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--poll-s", type=float, default=0.1)
    ap.add_argument("--lipfd-option", action="append", default=[], metavar="KEY=VALUE",
                    help="LIPFD-V1 option for every job of its phase (e.g. n_extract=2 on a slow machine)")
    ap.add_argument("--json-out")
    args = ap.parse_args()

    from media_corpus import make_clip

    work = Path(tempfile.mkdtemp(prefix="bench-service-"))
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}, "phases": []}
    try:
        clip = work / "clip.mp4"
        make_clip(clip, seconds=4.0, size=(640, 480))
        results["clip_bytes"] = clip.stat().st_size
        phases = []
        if args.fast_jobs:
            phases.append(("fast", ["-m", "forensics_core.testing:FakeDetector", "--workers", str(args.workers)],
                           "FAKE-VISUAL", args.fast_jobs))
        if args.lipfd_jobs and args.weights:
            phases.append(("lipfd", ["-m", "LIPFD-V1", "--weights", args.weights, "--device", args.device,
                                     "--workers", str(args.lipfd_workers)], "LIPFD-V1", args.lipfd_jobs))
        elif args.lipfd_jobs:
            print("no --weights: the LIPFD-V1 phase is skipped", file=sys.stderr)
        for name, server_args, models, jobs in phases:
            server = Server(work / name, server_args + ["--queue-size", str(max(100, jobs)), "--spool-quota-mb", "4096"])
            try:
                t0 = time.perf_counter()
                server.wait_ready(timeout=600)
                ready_s = time.perf_counter() - t0
                options = dict(parse_option(o) for o in args.lipfd_option) if name == "lipfd" else None
                phase = run_phase(server, clip, models, jobs, args.clients, args.poll_s, options)
                phase.update(name=name, workers=server_args[-1], ready_s=round(ready_s, 1), options=options)
                results["phases"].append(phase)
                print(f"{name:<6} {phase['succeeded']}/{jobs} succeeded, lost {phase['lost']}; "
                      f"POST p50 {phase['post_ms_p50']} ms p95 {phase['post_ms_p95']} ms; "
                      f"GET p50 {phase['get_ms_p50']} ms p95 {phase['get_ms_p95']} ms; "
                      f"job p50 {phase['job_s_p50']} s p95 {phase['job_s_p95']} s; "
                      f"{phase['jobs_per_minute']} jobs/min", file=sys.stderr)
            finally:
                server.stop()
    except KeyboardInterrupt:
        results["interrupted"] = True
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json_out:
        Path(args.json_out).write_text(text + "\n")


if __name__ == "__main__":
    main()

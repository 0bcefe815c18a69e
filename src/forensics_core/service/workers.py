"""Workers: load the models once, then claim jobs from the store until told to stop.

A worker is a process of its own (``python -m forensics_core.service.workers``,
started by :class:`LocalWorkers`) or a Ray actor (:class:`RayWorkers`, ``--backend
ray``, as ``forensics scan`` runs its actors). Either way it talks to the rest of
the service through the job store only, so workers of several replicas share one
queue, and a worker that dies loses nothing: its job's lease runs out and the job is
claimed again.

A local worker dies with the server: it asks Linux to kill it when its parent dies
(``PR_SET_PDEATHSIG``) and watches its parent besides, so ``kill -9`` of the server
leaves no worker behind. On SIGTERM (a normal shutdown) it gives its running job
back to the queue and exits.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import EXIT_MODEL, EXIT_USAGE, ForensicsError
from ..logs import get_logger
from .config import ServiceConfig

log = get_logger("forensics.service.workers")


class Shutdown(BaseException):
    """Raised in a worker's main thread by SIGTERM/SIGINT: not an ``Exception``, so no detector swallows it."""


# ---------------------------------------------------------------------------- the loop
class WorkerLoop:
    def __init__(self, config: ServiceConfig, worker_id: str, stop: threading.Event):
        from .jobs import JobStore
        from .spool import Spool
        from .store import make_engine

        self.config, self.worker_id, self.stop = config, worker_id, stop
        self.store = JobStore(make_engine(config.database_url, create=False))
        self.spool = Spool(config.spool_dir, config.spool_quota_bytes)
        self.detectors: dict[str, Any] = {}
        self.busy = False

    def load(self) -> None:
        from ..batch.worker import load_detectors

        self.store.register_worker(self.worker_id, self.config.replica, os.getpid())
        try:
            dets = load_detectors(self.config.models, self.config.load_kwargs)
        except ForensicsError as exc:
            self.store.worker_state(self.worker_id, "failed", error=json.dumps(exc.to_dict()))
            raise
        self.detectors = {d.card.id: d for d in dets}
        self.store.worker_state(self.worker_id, "ready", models=list(self.detectors))
        log.info("worker ready", worker=self.worker_id, models=list(self.detectors))

    def run(self) -> None:
        beat_every, last_beat, idle = self.config.lease_s / 3, 0.0, self.config.poll_s
        try:
            while not self.stop.is_set():
                if time.monotonic() - last_beat > beat_every:
                    self.store.worker_heartbeat(self.worker_id)
                    last_beat = time.monotonic()
                job = self.store.claim(self.config.lease_s)
                if job is None:
                    self.stop.wait(idle)
                    idle = min(1.0, idle * 1.5)  # idle workers poll less often, busy ones at once
                    continue
                idle = self.config.poll_s
                self.process(job)
        finally:
            self.store.remove_worker(self.worker_id)

    def process(self, job: dict[str, Any]) -> None:
        from .runner import run_job

        job_id, token = job["id"], job["claim_token"]
        lost = threading.Event()
        state: dict[str, Any] = {"progress": 0.0, "stage": "analyzing"}
        beat = threading.Thread(target=self._beat, args=(job_id, token, state, lost), daemon=True,
                                name=f"lease-{job_id[:8]}")
        beat.start()
        self.busy = True
        try:
            outcome = self._run(job, state, run_job)
        except Shutdown:
            lost.set()
            beat.join()
            self.store.release(job_id, token)
            log.info("job given back to the queue (shutdown)", job=job_id)
            raise
        finally:
            self.busy = False
        done = lost.is_set()  # set by the heartbeat when the job stopped being ours
        lost.set()  # stops the heartbeat thread
        beat.join()
        if done:
            log.info("job cancelled, deleted or taken over while running; result dropped", job=job_id)
            return
        report = self.spool.write_report(job_id, outcome.report) if outcome.report else None
        if self.store.finish(job_id, token, status=outcome.status, result=outcome.result_text, error=outcome.error,
                             report_name=report):
            self.spool.remove(job["spool_name"])
            log.info("job finished", job=job_id, status=outcome.status, attempts=job["attempts"])
        else:
            self.spool.remove(report)
            log.info("job no longer ours at the finish; result dropped", job=job_id)

    def _run(self, job: dict[str, Any], state: dict[str, Any], run_job: Callable):
        from .runner import Outcome

        models, options = json.loads(job["models"]), json.loads(job["options"])
        missing = [m for m in models if m not in self.detectors]
        if missing:
            err = {"type": "ModelNotServed", "code": "model_not_served",
                   "message": f"this worker does not serve {', '.join(missing)}",
                   "hint": "every replica must be started with the same --models"}
            return Outcome("failed", {"error": err}, err)
        if job["spool_name"]:
            path, shown = str(self.spool.upload_path(job["spool_name"])), job["media_name"]
        else:
            path, shown = job["source_path"], None

        def progress(done: int, total: int, detector_id: str) -> None:
            state["progress"] = round(done / total, 4)
            state["stage"] = f"analyzing with {detector_id} ({done + 1}/{total})"

        try:
            return run_job(self.detectors, models, options, job["combine"], path, shown, progress)
        except Exception as exc:
            log.error("job raised", job=job["id"], error=repr(exc), exc_info=True)
            err = {"type": type(exc).__name__, "code": "internal_error", "message": "the analysis failed unexpectedly",
                   "hint": "the service's log has the traceback"}
            return Outcome("failed", {"error": err}, err)

    def _beat(self, job_id: str, token: str, state: dict[str, Any], lost: threading.Event) -> None:
        every = max(0.2, self.config.lease_s / 3)
        first = True
        while first or not lost.wait(every):
            first = False
            try:
                if not self.store.heartbeat(job_id, token, self.config.lease_s, progress=state["progress"], stage=state["stage"]):
                    lost.set()
                    return
                self.store.worker_heartbeat(self.worker_id)  # busy is alive: /readyz keeps counting this worker
            except Exception as exc:  # noqa: BLE001 - the database may blip; the lease covers a few misses
                log.warning("heartbeat failed", job=job_id, error=repr(exc))


# ---------------------------------------------------------------------------- process entry
def _die_with_parent(parent_pid: int) -> None:
    """Linux kills us when the server dies (even by SIGKILL); a watchdog covers everything else."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def main(argv: list[str] | None = None) -> int:
    """``python -m forensics_core.service.workers WORKER_ID PARENT_PID`` with the config as JSON on stdin."""
    from ..logs import configure

    worker_id, parent_pid = (argv or sys.argv[1:])[:2]
    _die_with_parent(int(parent_pid))
    configure(os.environ.get("FORENSICS_LOG_LEVEL", "warning"), os.environ.get("FORENSICS_LOG_FORMAT", "console"))
    config = ServiceConfig.from_json(sys.stdin.read())
    stop = threading.Event()
    loop = WorkerLoop(config, worker_id, stop)

    def on_signal(signum, _frame) -> None:
        stop.set()
        if loop.busy:
            raise Shutdown()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        loop.load()
        loop.run()
    except ForensicsError as exc:
        print(f"error [{exc.code}]: {exc.message}" + (f"\nhint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return exc.exit_code
    except Shutdown:
        pass
    return 0


# ---------------------------------------------------------------------------- local processes
def worker_env(config: ServiceConfig) -> dict[str, str]:
    """The worker's environment: torch's compile cache goes under the service's home, not $TMPDIR."""
    from .config import service_home

    env = dict(os.environ)
    env.setdefault("TORCHINDUCTOR_CACHE_DIR", str(service_home() / "cache" / "torchinductor"))
    return env


class LocalWorkers:
    """N worker processes, restarted when they crash; a worker that cannot load its models stops the server."""

    def __init__(self, config: ServiceConfig, on_fatal: Callable[[int], None]):
        self.config, self.on_fatal = config, on_fatal
        self.procs: dict[int, subprocess.Popen] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._supervise, daemon=True, name="worker-supervisor")

    def start(self) -> None:
        self.thread.start()

    def _spawn(self, slot: int) -> subprocess.Popen:
        worker_id = f"{self.config.replica}/w{slot}/{time.time_ns()}"
        proc = subprocess.Popen([sys.executable, "-m", "forensics_core.service.workers", worker_id, str(os.getpid())],
                                stdin=subprocess.PIPE, text=True, env=worker_env(self.config))
        proc.stdin.write(self.config.to_json())
        proc.stdin.close()
        return proc

    def _supervise(self) -> None:
        # Spawned from this long-lived thread: PR_SET_PDEATHSIG follows the thread that forked.
        backoff = dict.fromkeys(range(self.config.workers), 1.0)
        for slot in range(self.config.workers):
            self.procs[slot] = self._spawn(slot)
        while not self.stopping.wait(0.5):
            for slot, proc in list(self.procs.items()):
                rc = proc.poll()
                if rc is None or self.stopping.is_set():
                    continue
                if rc in (EXIT_MODEL, EXIT_USAGE):
                    log.error("a worker could not load its models; stopping the service", exit_code=rc)
                    self.on_fatal(rc)
                    return
                log.warning("worker exited; restarting it", slot=slot, exit_code=rc, in_s=backoff[slot])
                if self.stopping.wait(backoff[slot]):
                    return
                backoff[slot] = min(30.0, backoff[slot] * 2)
                self.procs[slot] = self._spawn(slot)

    def stop(self, grace_s: float = 10.0) -> None:
        self.stopping.set()
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.thread.is_alive():
            self.thread.join(timeout=2)


# ---------------------------------------------------------------------------- Ray actors
class _RayWorker:
    """Ray actor body (threaded: ``shutdown`` runs while ``run`` loops)."""

    def __init__(self, config_json: str, worker_id: str):
        self.stop = threading.Event()
        self.loop = WorkerLoop(ServiceConfig.from_json(config_json), worker_id, self.stop)

    def run(self) -> dict | None:
        try:
            self.loop.load()
            self.loop.run()
        except ForensicsError as exc:  # returned as data: our exceptions do not all pickle
            return {**exc.to_dict(), "exit_code": exc.exit_code}
        return None

    def shutdown(self) -> None:
        self.stop.set()


class RayWorkers:
    """``--backend ray``: the same loop in Ray actors, on a local or an existing cluster."""

    def __init__(self, config: ServiceConfig, on_fatal: Callable[[int], None]):
        self.config, self.on_fatal = config, on_fatal
        self.actors: list = []
        self.refs: list = []
        self.own = False
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True, name="ray-watch")

    def start(self) -> None:
        try:
            import ray
        except ImportError:
            raise ForensicsError("--backend ray needs Ray, which is not installed", hint="pip install 'forensics[ray]'",
                                 code="invalid_options") from None
        self.own = not ray.is_initialized()
        if self.own:
            ray.init(address=self.config.ray_address or None, include_dashboard=False, log_to_driver=True)
        resources: dict[str, Any] = {"num_cpus": 1, "max_concurrency": 2}
        gpus = ray.cluster_resources().get("GPU", 0)
        if gpus and self.config.device != "cpu":
            resources["num_gpus"] = min(1.0, gpus / max(1, self.config.workers))
        actor_cls = ray.remote(**resources)(_RayWorker)
        for slot in range(self.config.workers):
            cache = {"TORCHINDUCTOR_CACHE_DIR": worker_env(self.config)["TORCHINDUCTOR_CACHE_DIR"]}
            actor = actor_cls.options(runtime_env={"env_vars": cache}).remote(
                self.config.to_json(), f"{self.config.replica}/ray{slot}/{time.time_ns()}")
            self.actors.append(actor)
            self.refs.append(actor.run.remote())
        self.thread.start()

    def _watch(self) -> None:
        import ray

        pending = list(self.refs)
        while pending and not self.stopping.is_set():
            done, pending = ray.wait(pending, timeout=1.0)
            for ref in done:
                if self.stopping.is_set():
                    return
                try:
                    err = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - an actor that died
                    log.error("a Ray worker died", error=repr(exc))
                    err = {"exit_code": 1}
                if err:
                    log.error("a Ray worker stopped; stopping the service", error=err.get("message"))
                    self.on_fatal(int(err.get("exit_code", 1)))
                    return

    def stop(self, grace_s: float = 10.0) -> None:
        import ray

        self.stopping.set()
        for actor in self.actors:
            actor.shutdown.remote()
        try:
            ray.wait(self.refs, num_returns=len(self.refs), timeout=grace_s)
        finally:
            for actor in self.actors:
                ray.kill(actor)
            if self.own:
                ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())

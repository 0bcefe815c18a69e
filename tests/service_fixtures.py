"""Pytest plugin: real ``forensics serve`` processes on 127.0.0.1, and what they need.

* ``service_plugin_path``: a third-party plugin, pip-installed once per session into a
  folder that goes on the servers' ``PYTHONPATH``. It registers the fast test
  detectors (``FAKE-VISUAL``, ``FAKE-AUDIO``) and ``FAKE-SLOW`` (sleeps ``seconds``,
  and notes ``start``/``end`` with its pid and the file's name in
  ``$FORENSICS_TEST_RUN_LOG``), so servers and the CLI find them through entry
  points, as they would any plugin.
* ``services``: starts servers (:class:`Service`), and at teardown stops every one,
  checks that none left a process behind, and that none wrote to its ``$TMPDIR``.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from plugin_packages import install_plugin

SRC = Path(__file__).resolve().parents[1] / "src"

PLUGIN_SOURCE = textwrap.dedent('''
    import os, time
    from pydantic import Field
    from forensics_core import hookimpl
    from forensics_core.testing import AudioFakeDetector, FakeDetector, FakeOptions

    class SlowOptions(FakeOptions):
        seconds: float = Field(1.0, ge=0, le=60, description="sleep before reading the frames")

    class SlowFake(FakeDetector):
        card = FakeDetector.card.model_copy(update={"id": "FAKE-SLOW", "aliases": [],
                                                    "options_schema": SlowOptions.model_json_schema()})
        Options = SlowOptions

        def _analyze(self, path, options):
            self._note("start", path)
            time.sleep(options.seconds)
            result = super()._analyze(path, options)
            self._note("end", path)
            return result

        @staticmethod
        def _note(what, path):
            log = os.environ.get("FORENSICS_TEST_RUN_LOG")
            if log:
                with open(log, "a") as fh:
                    fh.write(f"{what} {os.getpid()} {os.path.basename(path)}\\n")

    @hookimpl
    def register_detectors(register):
        register(FakeDetector)
        register(AudioFakeDetector)
        register(SlowFake)
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes_where(field: int, value: int) -> list[int]:
    """Pids whose /proc/PID/stat has ``value`` at ``field`` (counted after the command name: 1 the parent, 3 the session)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[field]) == value:
            out.append(int(stat.parent.name))
    return out


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid``, read from /proc."""
    return _processes_where(1, pid)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Service:
    """One ``forensics serve`` process (a session of its own), its home, spool and $TMPDIR."""

    def __init__(self, root: Path, plugin_path: str, args: list[str], env: dict[str, str] | None = None,
                 port: int | None = None):
        self.root, self.args = root, list(args)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = root / "home"
        self.tmpdir = root / "tmpdir"
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "FORENSICS_HOME": str(self.home), "TMPDIR": str(self.tmpdir),
                    "PYTHONPATH": os.pathsep.join([plugin_path, str(SRC), os.environ.get("PYTHONPATH", "")]),
                    **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.log = root / f"server-{self.port}.log"

    def cli(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "forensics_core", *args], env=self.env, capture_output=True, check=False,
                              text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"forensics {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def new_key(self, name: str = "tests") -> str:
        return self.cli("serve", "keys", "create", "--name", name, *self.db_args()).stdout.strip()

    def db_args(self) -> list[str]:
        return [a for i, a in enumerate(self.args) if a.startswith("--database") or (i and self.args[i - 1] == "--database")]

    def start(self, wait: str = "/readyz", timeout: float = 90) -> Service:
        self.fh = self.log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "forensics_core", "serve", "--port", str(self.port), *self.args],
                                     env=self.env, stdout=self.fh, stderr=subprocess.STDOUT, start_new_session=True)
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"forensics serve exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + wait, timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"forensics serve did not become ready:\n{self.log.read_text()}")

    def workers(self) -> list[int]:
        return children_of(self.proc.pid) if self.proc else []

    def kill9(self) -> list[int]:
        """SIGKILL the server process alone (not its workers); returns the workers it had."""
        workers = self.workers()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        return workers

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        try:  # anything left in its session (it should be nothing)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait(timeout=10)
        self.fh.close()
        return self.proc.returncode

    def spool_files(self, spool: Path | None = None) -> list[Path]:
        base = spool or self.home / "service" / "spool"
        return sorted(p for p in base.rglob("*") if p.is_file())


@pytest.fixture(scope="session")
def service_plugin_path(tmp_path_factory) -> str:
    pytest.importorskip("fastapi")
    return install_plugin(tmp_path_factory.mktemp("service_plugin") / "site", "forensics-service-testplugin",
                          "forensics_service_testplugin", PLUGIN_SOURCE)


class ServiceFactory:
    def __init__(self, root: Path, plugin_path: str):
        self.root, self.plugin_path, self.started = root, plugin_path, []

    def __call__(self, *args: str, env: dict[str, str] | None = None, start: bool = True, wait: str = "/readyz",
                 name: str | None = None, port: int | None = None) -> Service:
        svc = Service(self.root / (name or f"svc{len(self.started)}"), self.plugin_path, list(args), env, port)
        self.started.append(svc)
        return svc.start(wait=wait) if start else svc

    def close(self) -> None:
        problems = []
        for svc in self.started:
            pid = svc.proc.pid if svc.proc else None
            svc.stop()
            if pid is not None:
                time.sleep(0.1)
                left = [p for p in _session_members(pid) if alive(p)]
                if left:
                    problems.append(f"processes left by {svc.url}: {left}")
            leftovers = [p.name for p in svc.tmpdir.iterdir()] if svc.tmpdir.exists() else []
            if leftovers:
                problems.append(f"{svc.url} wrote to its TMPDIR: {leftovers}")
        assert not problems, problems


def _session_members(sid: int) -> list[int]:
    return _processes_where(3, sid)  # field 6 of stat: the session id


@pytest.fixture
def services(tmp_path, service_plugin_path):
    factory = ServiceFactory(tmp_path, service_plugin_path)
    yield factory
    factory.close()


@pytest.fixture(scope="module")
def module_services(tmp_path_factory, service_plugin_path):
    factory = ServiceFactory(tmp_path_factory.mktemp("services"), service_plugin_path)
    yield factory
    factory.close()


def wait_for(client, href: str, states=("succeeded", "failed", "cancelled"), timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(href).json()
        if job.get("status") in states:
            return job
        time.sleep(0.1)
    raise AssertionError(f"{href} did not reach {states}: {json.dumps(job)[:500]}")

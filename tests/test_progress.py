"""Progress of one analysis: the protocol, the terminal reporter, and `forensics analyze` on a terminal and a pipe."""
from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
import threading

import pytest

from forensics_core import progress as prog
from lipfd_fixtures import V1


class Recording:
    """A Progress that remembers what it was told."""

    def __init__(self):
        self.events: list[tuple] = []
        self.lock = threading.Lock()

    def stage(self, name, total=None, unit="it"):
        with self.lock:
            self.events.append(("stage", name, total, unit))

    def advance(self, n=1):
        with self.lock:
            self.events.append(("advance", n))

    def close(self):
        self.events.append(("close",))

    def stages(self) -> list[str]:
        return [e[1] for e in self.events if e[0] == "stage"]

    def advanced(self, stage: str) -> float:
        total, current = 0.0, None
        for e in self.events:
            if e[0] == "stage":
                current = e[1]
            elif e[0] == "advance" and current == stage:
                total += e[1]
        return total


def test_the_default_reporter_does_nothing_and_reporting_installs_one():
    assert isinstance(prog.current(), prog.NullProgress)
    rec = Recording()
    assert isinstance(rec, prog.Progress)
    with prog.reporting(rec):
        prog.current().stage("audio", total=4, unit="s")
        prog.current().advance(4)
    assert isinstance(prog.current(), prog.NullProgress)
    assert rec.events == [("stage", "audio", 4, "s"), ("advance", 4), ("close",)]


def test_a_thread_without_the_context_reports_nothing():
    rec, seen = Recording(), []
    with prog.reporting(rec):
        t = threading.Thread(target=lambda: seen.append(prog.current()))
        t.start()
        t.join()
    assert isinstance(seen[0], prog.NullProgress)


def test_terminal_reporter_only_on_a_terminal_and_not_quiet():
    master, slave = pty.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as tty:
            assert isinstance(prog.for_terminal("clip.mp4", stream=tty), prog.TerminalProgress)
            assert isinstance(prog.for_terminal("clip.mp4", stream=tty, quiet=True), prog.NullProgress)
            reporter = prog.for_terminal("clip.mp4", stream=tty)
            reporter.stage("frames", total=50, unit="frame")
            reporter.advance(50)
            reporter.stage("model")
            reporter.close()
            tty.flush()
        os.set_blocking(master, False)
        shown = os.read(master, 65536).decode(errors="replace")
    finally:
        os.close(master)
        os.close(slave)
    assert "clip.mp4: frames" in shown and "/50 " in shown and "clip.mp4: model" in shown
    assert isinstance(prog.for_terminal("clip.mp4", stream=io.StringIO()), prog.NullProgress)  # a pipe or a file


# ------------------------------------------------------------------------- the CLI, end to end


def _analyze(args: list[str], *, stderr_tty: bool, env: dict) -> tuple[int, str, bytes]:
    cmd = [sys.executable, "-m", "forensics_core", "analyze", *args]
    if not stderr_tty:
        out = subprocess.run(cmd, capture_output=True, timeout=900, env=env)
        return out.returncode, out.stdout.decode(), out.stderr
    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def pump():
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    stdout = proc.communicate(timeout=900)[0]
    reader.join(timeout=10)
    os.close(master)
    return proc.returncode, stdout.decode(), b"".join(chunks)


DENSE3 = ["-o", "sampling=dense", "-o", "stride=70"]  # v1: 3 windows, frames 0-4, 70-74, 140-144


def _env(tmp_path) -> dict:
    return {**os.environ, "FORENSICS_HOME": str(tmp_path / "home"), "COLUMNS": "120"}


@pytest.mark.slow
@pytest.mark.parametrize("tty", [True, False], ids=["terminal", "pipe"])
def test_cli_shows_the_stages_of_one_file_on_a_terminal_only(standin_checkpoint, tmp_path, tty):
    args = [str(V1 / "v1.mp4"), "--weights", str(standin_checkpoint), "--device", "cpu", "--json", *DENSE3]
    code, stdout, stderr = _analyze(args, stderr_tty=tty, env=_env(tmp_path))
    text = stderr.decode(errors="replace")
    assert code == 0, text[-3000:]
    result = json.loads(stdout)  # stdout holds the result only, on a terminal too
    assert [w["start_frame"] for w in result["windows"]] == [0, 70, 140]
    if tty:
        for stage in ("probe", "faces", "audio", "frames+model"):
            assert f"v1.mp4: {stage}" in text, text[-2000:]
        assert "/150" in text and "frame" in text  # frames done of the 150, with tqdm's rate and ETA
        assert "<" in text  # tqdm's [elapsed<remaining]
    else:
        assert "\r" not in text and "v1.mp4:" not in text and "it/s" not in text, text[-2000:]


@pytest.mark.slow
def test_cli_quiet_shows_no_progress_on_a_terminal(standin_checkpoint, tmp_path):
    bad = tmp_path / "not_a_video.mp4"
    bad.write_text("hello")  # fails in the probe stage, which would be shown
    args = [str(bad), "--weights", str(standin_checkpoint), "--device", "cpu", "--json"]
    code, stdout, stderr = _analyze([*args, "--quiet"], stderr_tty=True, env=_env(tmp_path))
    assert code == 3 and json.loads(stdout)["error"]["code"] == "unsupported_format"
    assert b"not_a_video.mp4: probe" not in stderr
    code, _, stderr = _analyze(args, stderr_tty=True, env=_env(tmp_path))
    assert code == 3 and b"not_a_video.mp4: probe" in stderr  # the same run without --quiet shows it

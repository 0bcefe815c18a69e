"""Issue 14: the host under hostile input beyond the media corpus, through the real CLI.

Each test is one item of the issue (the media cases themselves are corpus cases in
tests/media_corpus.py, run by test_hostile_media.py; downloads are in
test_weights_download.py, checkpoints in test_lipfd_weights.py). Commands run as real
subprocesses (``python -m <module written here>``: the real ``forensics`` group with the
test detectors registered), so exit codes, signals, permissions and $TMPDIR are the real
thing. Every run checks: no traceback, nothing left in $TMPDIR or beside the inputs.
docs/errors.md lists these items with their outcomes; test_docs_errors.py keeps the list
and this module in step.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from forensics_core.batch.scan import read_lines
from media_corpus import NON_UTF8_NAME, make_clip

SRC = Path(__file__).resolve().parents[1] / "src"
SMALL = {"seconds": 1.0, "size": (160, 120)}

CLI_MODULE = '''
import os, sys, time
from pathlib import Path
from forensics_core.cli import main
from forensics_core.testing import AudioFakeDetector, FakeDetector, registered

class SlowFake(FakeDetector):
    """Takes SLOW_S seconds per file ("fast" in the name: 0.2 s); drops DONE_DIR/<name> when done."""
    card = FakeDetector.card.model_copy(update={"id": "FAKE-SLOW", "aliases": []})
    def _analyze(self, path, options):
        time.sleep(0.2 if "fast" in Path(path).name else float(os.environ.get("SLOW_S", "30")))
        result = super()._analyze(path, options)
        if os.environ.get("DONE_DIR"):
            Path(os.environ["DONE_DIR"], Path(path).name).touch()
        return result

class WarnFake(FakeDetector):
    card = FakeDetector.card.model_copy(update={"id": "FAKE-WARN", "aliases": []})
    def _analyze(self, path, options):
        result = super()._analyze(path, options)
        return result.model_copy(update={"warnings": ["the audio starts 30.0 s after the video"]})

if __name__ == "__main__":
    if os.environ.get("BLOCK_MATPLOTLIB"):  # as after a plain `pip install .`
        sys.modules["matplotlib"] = None
    with registered(FakeDetector, AudioFakeDetector, SlowFake, WarnFake):
        main()
'''


class Cli:
    """Runs the CLI under test in a fresh TMPDIR and working directory, and checks what it leaves."""

    def __init__(self, base: Path):
        self.base = base
        self.tmp, self.cwd, self.home = base / "tmp", base / "cwd", base / "home"
        for d in (self.tmp, self.cwd):
            d.mkdir(parents=True, exist_ok=True)
        (base / "hostile_cli_under_test.py").write_text(textwrap.dedent(CLI_MODULE))
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(base), os.environ.get("PYTHONPATH", "")]),
                    "TMPDIR": str(self.tmp), "TMP": str(self.tmp), "TEMP": str(self.tmp),
                    "FORENSICS_HOME": str(self.home), "HOME": str(base)}
        self.env.pop("TORCHINDUCTOR_CACHE_DIR", None)

    def cmd(self, *args) -> list:
        return [sys.executable, "-m", "hostile_cli_under_test", *(os.fspath(a) if isinstance(a, Path) else a for a in args)]

    def __call__(self, *args, timeout: float = 120, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.cmd(*args), cwd=self.cwd, env={**self.env, **(env or {})}, capture_output=True,
                              timeout=timeout, **kw)
        proc.out, proc.err = proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8")  # both must be valid UTF-8
        assert "Traceback" not in proc.err, proc.err[-3000:]
        return proc

    def clean(self) -> None:
        assert os.listdir(self.tmp) == [], "left in TMPDIR"
        assert os.listdir(self.cwd) == [], "written into the working directory"


@pytest.fixture
def cli(tmp_path) -> Cli:
    run = Cli(tmp_path / "cli")
    yield run
    run.clean()


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """good.mp4 (sound), silent.mp4 (no audio track), empty.mp4; read-only to the tests."""
    root = tmp_path_factory.mktemp("clips")
    make_clip(root / "good.mp4", **SMALL)
    make_clip(root / "silent.mp4", audio=False, **SMALL)
    (root / "empty.mp4").write_bytes(b"")
    return root


def listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# --------------------------------------------------------------------------- 1: names that are not UTF-8
def test_01_non_utf8_names_in_scan_analyze_and_lists(cli, clips, tmp_path):
    """OpenCV segfaulted on the name and the JSONL writer raised: no row for any file, every resume died."""
    root = tmp_path / "media"
    root.mkdir()
    shutil.copy(clips / "good.mp4", root / "a_good.mp4")
    shutil.copy(clips / "good.mp4", root / NON_UTF8_NAME)
    before = listing(root)
    out = tmp_path / "scan.jsonl"
    first = cli("scan", root, "-m", "FAKE-VISUAL", "--output", out, "--json")
    assert first.returncode == 0, first.err
    raw = out.read_bytes()
    raw.decode("utf-8")  # the JSONL is valid UTF-8
    lines = read_lines(out)
    odd = next(line for line in lines if line.get("media_path_bytes"))
    exact = os.path.join(os.path.realpath(root), NON_UTF8_NAME)
    from forensics_core.media import path_from_fields

    assert base64.b64decode(odd["media_path_bytes"]) == os.fsencode(exact)  # lossless
    assert odd["media_path"].endswith("caf\\xe9 \\xff\\xfe.mp4")  # readable
    assert path_from_fields(odd["media_path"], odd["media_path_bytes"]) == exact
    assert odd["results"][0]["status"] == "ok" and odd["results"][0]["media_path_bytes"] == odd["media_path_bytes"]
    assert odd["file_key"]["path_bytes"] == odd["media_path_bytes"]
    again = json.loads(cli("scan", root, "-m", "FAKE-VISUAL", "--output", out, "--json").out)
    assert (again["skipped_resumed"], again["analyzed"]) == (2, 0) and out.read_bytes() == raw  # the resume finds it

    lst = tmp_path / "list.txt"  # a path list holding the raw name
    lst.write_bytes(os.fsencode(exact) + b"\n")
    listed = cli("scan", lst, "-m", "FAKE-VISUAL", "--output", tmp_path / "list.jsonl", "--json")
    assert listed.returncode == 0 and json.loads(listed.out)["ok"] == 1, listed.err

    single = cli("analyze", exact, "-m", "FAKE-VISUAL", "--json")
    assert single.returncode == 0 and json.loads(single.out)["media_path_bytes"] == odd["media_path_bytes"]
    human = cli("analyze", exact, "-m", "FAKE-VISUAL")
    assert human.returncode == 0 and "caf\\xe9 \\xff\\xfe.mp4" in human.out
    assert listing(root) == before


# --------------------------------------------------------------------------- 4: one output, one writer
def test_04_a_second_scan_on_the_same_output_refuses(cli, clips, tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    for name in ("a_slow.mp4", "b_slow.mp4"):
        shutil.copy(clips / "good.mp4", root / name)
    out = tmp_path / "shared.jsonl"
    first = subprocess.Popen(cli.cmd("scan", root, "-m", "FAKE-SLOW", "--output", out, "--workers", "1", "--json"),
                             cwd=cli.cwd, env={**cli.env, "SLOW_S": "30"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lock = tmp_path / ".shared.jsonl.lock"
        deadline = time.monotonic() + 60
        while not lock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lock.exists(), "the first scan never took its lock"
        second = cli("scan", root, "-m", "FAKE-SLOW", "--output", out, "--json", timeout=60)
        assert second.returncode == 5, second.err
        assert f"another scan (process {first.pid}) is writing" in second.err and "hint:" in second.err
        assert second.out == ""
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=30)
    assert first.returncode == 130
    assert listing(tmp_path) == sorted(["cli", "media", "shared.jsonl"])  # the lock file is gone


def test_04_the_lock_is_taken_by_the_api_too(clips, tmp_path):
    from forensics_core.batch.lock import OutputLock
    from forensics_core.batch.scan import scan
    from forensics_core.errors import OutputLockedError
    from forensics_core.testing import FakeDetector, registered

    out = tmp_path / "held.jsonl"
    with registered(FakeDetector), OutputLock(out):
        with pytest.raises(OutputLockedError) as info:
            scan([clips / "good.mp4"], ["FAKE-VISUAL"], out, progress=False)
    assert info.value.exit_code == 5 and not out.exists()
    with registered(FakeDetector):
        assert scan([clips / "good.mp4"], ["FAKE-VISUAL"], out, progress=False).ok == 1  # released: usable again


# --------------------------------------------------------------------------- 5: sha256 keys on FIFOs and devices
def test_05_sha256_key_never_reads_a_fifo_or_a_device(cli, clips, tmp_path):
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    zeros = tmp_path / "zeros.mp4"
    zeros.symlink_to("/dev/zero")
    started = time.monotonic()
    proc = cli("scan", fifo, zeros, clips / "good.mp4", "-m", "FAKE-VISUAL", "--key", "sha256",
               "--output", tmp_path / "k.jsonl", "--json", timeout=60)
    assert time.monotonic() - started < 60
    assert proc.returncode == 3, proc.err
    lines = {Path(line["media_path"]).name: line for line in read_lines(tmp_path / "k.jsonl")}
    assert lines["pipe.mp4"]["results"][0]["error"]["code"] == "not_a_file"
    assert lines["zero"]["results"][0]["error"]["code"] == "not_a_file"  # /dev/zero, resolved
    assert lines["pipe.mp4"]["file_key"]["sha256"] is None and lines["good.mp4"]["file_key"]["sha256"]


# --------------------------------------------------------------------------- 7: a file the user cannot read
def _without_root_powers() -> None:
    """In the child, before exec: a new user namespace. Root's files are then not ours to override
    (CAP_DAC_OVERRIDE only covers inodes owned inside the namespace): permission bits apply to us,
    as to any user. CI runs as root, where chmod 000 alone proves nothing."""
    import ctypes

    if ctypes.CDLL(None, use_errno=True).unshare(0x10000000) != 0:  # CLONE_NEWUSER
        os._exit(97)


def _unreadable_kwargs(secret: Path) -> dict:
    if os.geteuid() != 0:
        return {}
    probe = subprocess.run([sys.executable, "-c", f"open({str(secret)!r}, 'rb')"], preexec_fn=_without_root_powers,
                           capture_output=True, text=True, timeout=60)
    if probe.returncode == 97 or "PermissionError" not in probe.stderr:
        pytest.skip("running as root without user namespaces: no way to make a file unreadable to us")
    return {"preexec_fn": _without_root_powers}


def test_07_an_unreadable_file_gives_an_unreadable_row(cli, clips, tmp_path):
    """click's Path(readable=True) stopped the command: exit 2 and no rows where an `unreadable` row is promised."""
    secret, fine = tmp_path / "secret.mp4", tmp_path / "fine.mp4"
    shutil.copy(clips / "good.mp4", secret)
    shutil.copy(clips / "good.mp4", fine)
    os.chmod(secret, 0o000)
    as_user = _unreadable_kwargs(secret)
    analyzed = cli("analyze", secret, fine, "-m", "FAKE-VISUAL", "--json", **as_user)
    rows = [json.loads(line) for line in analyzed.out.splitlines()]
    assert [r["status"] for r in rows] == ["error", "ok"], analyzed.err
    assert rows[0]["error"]["code"] == "unreadable" and analyzed.returncode == 3
    out = tmp_path / "s.jsonl"
    scanned = cli("scan", secret, fine, "-m", "FAKE-VISUAL", "--output", out, "--json", "--key", "sha256", **as_user)
    assert scanned.returncode == 3 and json.loads(scanned.out)["error_codes"] == {"unreadable": 1}, scanned.err
    assert listing(tmp_path) == ["cli", "fine.mp4", "s.jsonl", "secret.mp4"]


# --------------------------------------------------------------------------- 8: symlink loops in a scan
def test_08_a_symlink_loop_is_a_row_not_the_end_of_the_scan(cli, clips, tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    shutil.copy(clips / "good.mp4", root / "good.mp4")
    (root / "loop.mp4").symlink_to("loop.mp4")
    (root / "sub").symlink_to(".")  # a folder loop: not followed
    (root / "locked").mkdir(mode=0o000)  # an unreadable folder: skipped with a warning
    out = tmp_path / "loops.jsonl"
    proc = cli("scan", root, root / "loop.mp4", "-m", "FAKE-VISUAL", "--output", out, "--json")
    os.chmod(root / "locked", 0o755)
    assert proc.returncode == 3, proc.err
    lines = {Path(line["media_path"]).name: line for line in read_lines(out)}
    assert set(lines) == {"good.mp4", "loop.mp4"}
    assert lines["loop.mp4"]["results"][0]["error"]["code"] == "file_not_found"
    assert "symlink loop" in lines["loop.mp4"]["results"][0]["error"]["message"]
    assert lines["good.mp4"]["results"][0]["status"] == "ok"


# --------------------------------------------------------------------------- 10: evaluate without matplotlib
def test_10_evaluate_without_matplotlib_writes_the_whole_report(cli, clips, tmp_path):
    """After a plain `pip install .` (no matplotlib) evaluate did all the work, then a traceback.
    The plots are SVG now (batch/evaluate_files.py): nothing optional is needed."""
    labelled = tmp_path / "labelled"
    for label, name in (("0_real", "r.mp4"), ("1_fake", "f.mp4")):
        (labelled / label).mkdir(parents=True)
        shutil.copy(clips / "good.mp4", labelled / label / name)
    out = tmp_path / "report"
    proc = cli("evaluate", labelled, "--output-dir", out, "-m", "FAKE-VISUAL", "--quiet", env={"BLOCK_MATPLOTLIB": "1"})
    assert proc.returncode == 0, proc.err
    assert listing(out) == ["pr.svg", "report.json", "report.md", "results.jsonl", "roc.svg"]
    assert (out / "roc.svg").read_text().lstrip().startswith("<svg") and "ROC AUC" in proc.out


# --------------------------------------------------------------------------- 11: resume keys
def test_11_resume_redoes_files_for_other_options_weights_or_versions(clips, tmp_path):
    from forensics_core.batch.scan import scan
    from forensics_core.testing import FakeDetector, registered

    w1, w2 = tmp_path / "w1.bin", tmp_path / "w2.bin"
    w1.write_bytes(b"stand-in")
    w2.write_bytes(b"the real one")
    out = tmp_path / "r.jsonl"
    inputs = [clips / "good.mp4", clips / "silent.mp4"]

    def run(**kw):
        s = scan(inputs, ["FAKE-VISUAL"], out, progress=False, **kw)
        return s.analyzed, s.skipped_resumed

    with registered(FakeDetector):
        assert run(load_kwargs={"weights": w1}) == (2, 0)
        assert run(load_kwargs={"weights": w1}) == (0, 2)
        assert run(load_kwargs={"weights": w2}) == (2, 0)  # other weights: every file again
        assert read_lines(out)[0]["scan_key"]["detectors"][0]["weights"]["path"] == str(w2)
        assert run(load_kwargs={"weights": w2}, options={"FAKE-VISUAL": {"frames": 8}}) == (0, 2)  # the default, spelled out
        assert run(load_kwargs={"weights": w2}, options={"FAKE-VISUAL": {"frames": 3}}) == (2, 0)  # other options
        os.utime(w2, ns=(0, 10**18))  # the weights file replaced in place
        assert run(load_kwargs={"weights": w2}, options={"FAKE-VISUAL": {"frames": 3}}) == (2, 0)
        assert run(load_kwargs={"weights": w2, "precision": "bf16"}, options={"FAKE-VISUAL": {"frames": 3}}) == (2, 0)

    class Newer(FakeDetector):
        card = FakeDetector.card.model_copy(update={"version": "1.0.1"})

    with registered(Newer):
        assert run(load_kwargs={"weights": w2, "precision": "bf16"}, options={"FAKE-VISUAL": {"frames": 3}}) == (2, 0)
    assert len(read_lines(out)) == 2


# --------------------------------------------------------------------------- 12: one outcome everywhere
def test_12_one_outcome_for_one_input_in_analyze_scan_and_the_api(cli, clips, tmp_path):
    from forensics_core import load_model
    from forensics_core.testing import AudioFakeDetector, registered

    with registered(AudioFakeDetector):
        api = load_model("FAKE-AUDIO").analyze(clips / "silent.mp4").to_dict()
    assert api["status"] == "abstained" and api["abstain_code"] == "no_audio_track"

    os.symlink(clips / "silent.mp4", tmp_path / "silent-link.mp4")
    single = cli("analyze", clips / "silent.mp4", "-m", "FAKE-AUDIO", "--json")
    assert single.returncode == 0, single.err  # an abstention is not an error
    row = json.loads(single.out)
    scanned = cli("scan", tmp_path / "silent-link.mp4", "-m", "FAKE-AUDIO", "--output", tmp_path / "o.jsonl", "--json")
    assert scanned.returncode == 0 and json.loads(scanned.out)["abstained"] == 1, scanned.err
    in_scan = read_lines(tmp_path / "o.jsonl")[0]["results"][0]
    for r in (row, in_scan):
        assert {k: r[k] for k in ("status", "abstain_code", "abstain_reason", "media_path", "score")} == \
               {k: api[k] for k in ("status", "abstain_code", "abstain_reason", "media_path", "score")}

    # media_path: the same form (absolute, resolved) on ok and error rows, however it was typed
    relative = os.path.relpath(clips / "good.mp4", cli.cwd)
    batch = cli("analyze", relative, os.path.relpath(clips / "empty.mp4", cli.cwd), "-m", "FAKE-VISUAL", "--json")
    ok, err = [json.loads(line) for line in batch.out.splitlines()]
    assert (ok["status"], err["status"]) == ("ok", "error")
    assert ok["media_path"] == str((clips / "good.mp4").resolve()) and err["media_path"] == str((clips / "empty.mp4").resolve())


# --------------------------------------------------------------------------- 13: what people read
def test_13_warnings_are_shown_and_media_errors_printed_once(cli, clips):
    warned = cli("analyze", clips / "good.mp4", "-m", "FAKE-WARN")
    assert warned.returncode == 0 and "warning: the audio starts 30.0 s after the video" in warned.out
    empty = cli("analyze", clips / "empty.mp4", "-m", "FAKE-VISUAL")
    assert empty.returncode == 3
    assert (empty.out + empty.err).count("is empty (0 bytes)") == 1, empty.out + empty.err


def test_13_a_url_is_not_a_missing_file_named_https(cli):
    proc = cli("analyze", "https://example.com/clip.mp4", "-m", "FAKE-VISUAL", "--json")
    row = json.loads(proc.out)
    assert proc.returncode == 3 and row["error"]["code"] == "file_not_found"
    assert "https://example.com/clip.mp4 is a URL" in row["error"]["message"] and "https:/example" not in row["error"]["message"]
    assert "download" in row["error"]["hint"].lower() or "fetch" in row["error"]["hint"].lower()


def test_13_a_wav_given_as_weights_is_named_as_such(cli, tmp_path):
    wav = make_clip(tmp_path / "voice.wav", vcodec=None, seconds=0.5)
    proc = cli("analyze", wav, "-m", "LIPFD-V1", "--weights", wav, timeout=300)
    assert proc.returncode == 4, proc.err
    assert "not a checkpoint: it looks like a RIFF file" in proc.err and "--audio" in proc.err
    assert "IndexError" not in proc.err


# --------------------------------------------------------------------------- 14: --output checked first
def test_14_output_is_checked_before_any_work_and_stdout_works(cli, clips, tmp_path):
    started = time.monotonic()
    proc = cli("analyze", clips / "good.mp4", "-m", "FAKE-SLOW", "--output", "/proc/forensics-result.json",
               env={"SLOW_S": "30"}, timeout=60)
    assert proc.returncode == 2 and "--output" in proc.err, proc.err
    assert time.monotonic() - started < 25  # refused before the 30 s analysis
    missing = cli("analyze", clips / "good.mp4", "-m", "FAKE-VISUAL", "--output", tmp_path / "no" / "such" / "r.json")
    assert missing.returncode == 2 and "folder does not exist" in missing.err
    for dest in ("/dev/stdout", "-"):
        out = cli("analyze", clips / "good.mp4", "-m", "FAKE-VISUAL", "--json", "--output", dest)
        assert out.returncode == 0 and json.loads(out.out)["status"] == "ok", out.err
    assert os.path.islink("/dev/stdout") or not os.path.isfile("/dev/stdout")  # never renamed over
    written = tmp_path / "r.json"
    ok = cli("analyze", clips / "good.mp4", "-m", "FAKE-VISUAL", "--json", "--output", written)
    assert ok.returncode == 0 and json.loads(written.read_text())["status"] == "ok"
    assert stat.S_IMODE(written.stat().st_mode) == 0o666 & ~_umask()
    assert listing(tmp_path) == ["cli", "r.json"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------- 16: nothing in $TMPDIR
@pytest.mark.slow
def test_16_a_lipfd_run_leaves_tmpdir_empty(cli, clips, standin_checkpoint):
    """Importing torchvision made an empty $TMPDIR/torchinductor_<user> on every run."""
    proc = cli("analyze", clips / "good.mp4", "-m", "LIPFD-V1", "--weights", standin_checkpoint, "--device", "cpu",
               "-o", "n_extract=1", "--json", timeout=600)
    assert proc.returncode == 0, proc.err
    assert os.listdir(cli.tmp) == [], "left in TMPDIR"
    assert (cli.home / "torchinductor").is_dir()  # where torch's cache goes instead
    result = json.loads(proc.out)  # and the result names its weights (item 6)
    assert result["weights"]["sha256"] and result["weights"]["path"] == os.path.realpath(standin_checkpoint)


# --------------------------------------------------------------------------- 17: Ctrl-C
def test_17_ctrl_c_stops_at_once_and_keeps_finished_lines(cli, clips, tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    for name in ("a_slow.mp4", "b_fast.mp4", "c_slow.mp4", "d_slow.mp4"):
        shutil.copy(clips / "good.mp4", root / name)
    done = tmp_path / "done"
    done.mkdir()
    out = tmp_path / "int.jsonl"
    env = {**cli.env, "SLOW_S": "30", "DONE_DIR": str(done)}
    proc = subprocess.Popen(cli.cmd("scan", root, "-m", "FAKE-SLOW", "--output", out, "--workers", "2", "--json"),
                            cwd=cli.cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (done / "b_fast.mp4").exists() and time.monotonic() < deadline:  # finished, behind a_slow
            time.sleep(0.05)
        assert (done / "b_fast.mp4").exists()
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        stdout, stderr = proc.communicate(timeout=25)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr.decode()
    assert took < 5, f"exited {took:.1f} s after Ctrl-C"
    summary = json.loads(stdout)
    assert summary["interrupted"] and summary["analyzed"] == 1
    assert [Path(line["media_path"]).name for line in read_lines(out)] == ["b_fast.mp4"]  # the finished line is kept
    assert not (tmp_path / ".int.jsonl.lock").exists()
    resumed = cli("scan", root, "-m", "FAKE-SLOW", "--output", out, "--json", env={"SLOW_S": "0.1"})
    assert json.loads(resumed.out)["skipped_resumed"] == 1 and json.loads(resumed.out)["analyzed"] == 3

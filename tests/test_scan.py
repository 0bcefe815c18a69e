"""``scan``/``evaluate`` on real small videos with the fake detectors (no LipFD weights needed).

What matters here is the contract of the JSONL file, not the detectors: exactly one
complete line per input file with the right status, resumes that redo no work but
redo changed files, crash repair, and an evaluation whose numbers agree with
scikit-learn on the scores that are in the file. The CLI runs as a real subprocess
(``python -m <a module written here>``) so that exit codes and SIGINT are the real thing.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from forensics_core import media
from forensics_core.errors import InvalidOptionsError
from forensics_core.batch.evaluate import evaluate
from forensics_core.batch.scan import discover, file_key, read_lines, scan
from forensics_core.testing import AudioFakeDetector, FakeDetector, registered
from media_corpus import ffmpeg
from media_fixtures import make_clip

SRC = Path(__file__).resolve().parents[1] / "src"
TIMING = {"processing_time", "timings"}
SMALL = {"seconds": 1.0, "size": (160, 120)}
BOTH = ["FAKE-VISUAL", "FAKE-AUDIO"]


@pytest.fixture(autouse=True)
def fakes():
    with registered(FakeDetector, AudioFakeDetector):
        yield


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """good_a.mp4, good_b.mkv, sub/nested.mov (sound), silent.mp4, zero.mp4, text.mp4; voice.wav, notes.txt (not media)."""
    root = tmp_path_factory.mktemp("corpus")
    make_clip(root / "good_a.mp4", **SMALL)
    make_clip(root / "good_b.mkv", **SMALL)
    (root / "sub").mkdir()
    make_clip(root / "sub" / "nested.mov", **SMALL)
    make_clip(root / "silent.mp4", audio=False, **SMALL)
    make_clip(root / "voice.wav", vcodec=None, seconds=1.0)
    (root / "zero.mp4").write_bytes(b"")
    (root / "text.mp4").write_text("This is not a video.\n" * 40)
    (root / "notes.txt").write_text("not a list: only explicit .txt arguments are lists\n")
    return root


EXPECTED = {  # file -> (file status, FAKE-VISUAL row, FAKE-AUDIO row); a row is a status or an error code
    "good_a.mp4": ("ok", "ok", "ok"), "good_b.mkv": ("ok", "ok", "ok"), "sub/nested.mov": ("ok", "ok", "ok"),
    "silent.mp4": ("ok", "ok", "abstained"), "zero.mp4": ("error", "empty_file", "empty_file"),
    "text.mp4": ("error", "unsupported_format", "unsupported_format"),
}


def _copy(corpus: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(corpus, tmp_path / "corpus"))


def _strip(obj):
    """A line without its timing fields (they differ from run to run)."""
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in TIMING}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _row_state(row: dict) -> str:
    return row["error"]["code"] if row["status"] == "error" else row["status"]


@pytest.fixture
def probes(monkeypatch) -> list[str]:
    """Every file the scan touches is probed once first: count the probes."""
    calls: list[str] = []
    real = media.probe

    def counting(path, *a, **k):
        calls.append(os.fspath(path))
        return real(path, *a, **k)

    monkeypatch.setattr(media, "probe", counting)
    return calls


class CountingFake(FakeDetector):
    """Counts analyses (thread-safe: list.append)."""

    def __init__(self):
        super().__init__()
        self.calls: list[str] = []

    def _analyze(self, path, options):
        self.calls.append(os.fspath(path))
        return super()._analyze(path, options)


# --------------------------------------------------------------------------- discover / keys
def test_discover_folders_lists_and_explicit_files(corpus, tmp_path):
    odd = tmp_path / "odd.xyz"
    odd.write_text("x")
    lists = tmp_path / "lists"
    lists.mkdir()
    lst = lists / "inputs.lst"
    lst.write_text(f"# a comment\n\n../corpus_link/good_a.mp4\n{corpus / 'good_a.mp4'}\n  {corpus / 'sub'}  \nmissing.mp4\n")
    (tmp_path / "corpus_link").symlink_to(corpus)

    names = {p.relative_to(corpus).as_posix() for p in discover([corpus])}
    assert names == set(EXPECTED)
    assert {p.name for p in discover([corpus], include_audio=True)} - {Path(n).name for n in EXPECTED} == {"voice.wav"}
    assert {p.name for p in discover([corpus], recursive=False)} == {"good_a.mp4", "good_b.mkv", "silent.mp4", "zero.mp4", "text.mp4"}
    # list entries relative to the list, deduplicated by resolved path (symlinked folder), sorted; missing kept
    assert discover([lst, odd]) == sorted([(corpus / "good_a.mp4").resolve(), (corpus / "sub" / "nested.mov").resolve(),
                                           (lists / "missing.mp4").resolve(), odd.resolve()])
    assert discover([corpus / "good_a.mp4", corpus]) == sorted(discover([corpus]))

    key = file_key(corpus / "good_a.mp4")
    st = (corpus / "good_a.mp4").stat()
    assert key == {"path": str((corpus / "good_a.mp4").resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    assert file_key(corpus / "gone.mp4")["size"] is None and file_key(corpus / "gone.mp4", "sha256")["sha256"] is None
    assert file_key(corpus / "good_a.mp4", "sha256")["sha256"] == hashlib.sha256((corpus / "good_a.mp4").read_bytes()).hexdigest()


# --------------------------------------------------------------------------- scan
def test_mixed_folder_gives_one_line_per_file_with_the_right_status(corpus, tmp_path):
    odd = tmp_path / "odd.xyz"
    odd.write_text("explicit arguments are kept whatever their extension")
    out = tmp_path / "out" / "results.jsonl"
    summary = scan([corpus, odd], BOTH, out, progress=False)

    lines = read_lines(out)
    assert out.read_bytes().endswith(b"\n") and len(out.read_bytes().splitlines()) == len(lines) == 7
    assert [line["media_path"] for line in lines] == [str(p) for p in sorted(discover([corpus, odd]))]  # input order
    by_name = {Path(line["media_path"]).relative_to(corpus).as_posix(): line for line in lines[:6] if str(corpus) in line["media_path"]}
    for name, (status, visual, audio) in EXPECTED.items():
        line = by_name[name]
        assert [r["detector_id"] for r in line["results"]] == BOTH
        assert [_row_state(r) for r in line["results"]] == [visual, audio], name
        assert line["combined"]["status"] == ("ok" if status == "ok" else "abstained")
        assert line["file_key"] == file_key(corpus / name)
    assert by_name["silent.mp4"]["results"][1]["abstain_reason"] == "no audio track"
    assert by_name["silent.mp4"]["combined"]["detectors_used"] == ["FAKE-VISUAL"]
    assert [_row_state(r) for r in read_lines(out)[-1]["results"]] == ["unsupported_format"] * 2  # odd.xyz sorts last
    assert summary.model_dump(include={"total", "analyzed", "skipped_resumed", "ok", "abstained", "error", "error_codes"}) == {
        "total": 7, "analyzed": 7, "skipped_resumed": 0, "ok": 4, "abstained": 0, "error": 3,
        "error_codes": {"empty_file": 1, "unsupported_format": 2}}
    assert summary.output == str(out.resolve()) and summary.models == BOTH


def test_resume_repeats_no_work_and_repairs_a_truncated_last_line(corpus, tmp_path, probes):
    counting = CountingFake().load()
    out = tmp_path / "results.jsonl"
    scan([corpus], [counting, "FAKE-AUDIO"], out, progress=False, workers=3)
    assert len(probes) == 6 and sorted(counting.calls) == sorted(str((corpus / n).resolve()) for n in EXPECTED if EXPECTED[n][1] == "ok")
    before = out.read_bytes()

    probes.clear(), counting.calls.clear()
    summary = scan([corpus], [counting, "FAKE-AUDIO"], out, progress=False)
    assert probes == [] and counting.calls == [] and out.read_bytes() == before
    assert (summary.total, summary.analyzed, summary.skipped_resumed, summary.ok, summary.error) == (6, 0, 6, 4, 2)

    # a crash in the middle of the last line: that file is redone, the half line is gone
    lines = before.splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    summary = scan([corpus], [counting, "FAKE-AUDIO"], out, progress=False)
    assert summary.analyzed == 1 and summary.skipped_resumed == 5
    assert probes == [json.loads(lines[-1])["media_path"]]
    after = out.read_bytes().splitlines(keepends=True)
    assert after[:-1] == lines[:-1] and _strip(json.loads(after[-1])) == _strip(json.loads(lines[-1]))


def test_changed_files_and_other_detectors_are_redone_keeping_one_line_per_file(corpus, tmp_path, probes):
    root = _copy(corpus, tmp_path)
    out = tmp_path / "results.jsonl"
    scan([root], BOTH, out, progress=False)
    target = root / "good_b.mkv"
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))

    probes.clear()
    summary = scan([root], BOTH, out, progress=False)
    assert probes == [str(target.resolve())] and (summary.analyzed, summary.skipped_resumed) == (1, 5)
    lines = read_lines(out)
    assert sorted(line["media_path"] for line in lines) == sorted(str(p) for p in discover([root]))  # still one each
    assert next(line for line in lines if line["media_path"] == str(target))["file_key"]["mtime_ns"] == st.st_mtime_ns + 5_000_000_000

    probes.clear()  # other detectors: every line is stale
    summary = scan([root], ["FAKE-VISUAL"], out, progress=False)
    assert len(probes) == 6 and summary.analyzed == 6 and len(read_lines(out)) == 6
    assert all([r["detector_id"] for r in line["results"]] == ["FAKE-VISUAL"] for line in read_lines(out))


def test_list_file_input_and_missing_entries(corpus, tmp_path):
    lst = tmp_path / "todo.txt"
    lst.write_text(f"# files to check\n{corpus / 'good_a.mp4'}\n\nnot-there.mp4\n")
    out = tmp_path / "results.jsonl"
    summary = scan([lst], ["FAKE"], out, progress=False)  # an alias works too
    lines = read_lines(out)
    assert [Path(line["media_path"]).name for line in lines] == ["good_a.mp4", "not-there.mp4"]
    assert lines[1]["results"][0]["error"]["code"] == "file_not_found" and lines[1]["file_key"]["size"] is None
    assert (summary.ok, summary.error) == (1, 1)
    assert scan([lst], ["FAKE"], out, progress=False).skipped_resumed == 2  # the missing file is not retried forever


def test_bad_arguments_fail_before_any_work(corpus, tmp_path, monkeypatch):
    out = tmp_path / "results.jsonl"
    with pytest.raises(InvalidOptionsError, match="frames"):
        scan([corpus], ["FAKE-VISUAL"], out, options={"FAKE-VISUAL": {"frames": 0}}, progress=False)
    with pytest.raises(InvalidOptionsError, match="not one of the models"):
        scan([corpus], ["FAKE-VISUAL"], out, options={"FAKE-AUDIO": {"x": 1}}, progress=False)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(InvalidOptionsError) as info:
        scan([corpus], ["FAKE-VISUAL"], out, backend="ray", progress=False)
    assert "pip install 'forensics[ray]'" in info.value.hint


# --------------------------------------------------------------------------- evaluate
@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    """0_real/ and 1_fake/ clips whose brightness (the fake detector's score) overlaps between classes."""
    root = tmp_path_factory.mktemp("labelled")
    base = make_clip(root / "base.mp4", **SMALL)
    for label, gains in (("0_real", [0.5, 0.8, 0.95, 1.15]), ("1_fake", [0.9, 1.05, 1.3, 1.6])):
        (root / label).mkdir()
        for g in gains:
            ffmpeg(["-i", base, "-vf", f"lutyuv=y=val*{g}", "-c:v", "libx264", "-preset", "veryfast", "-c:a", "copy",
                    root / label / f"g{g}.mp4"])
    base.unlink()
    return root


def _sklearn_check(report_json: dict, pairs: list[tuple[int, float]]) -> None:
    sk = pytest.importorskip("sklearn.metrics")
    y, s = zip(*pairs)
    assert len(set(s)) > 4 and 0 < sk.roc_auc_score(y, s) < 1  # a real test, not a degenerate one
    assert report_json["video"]["summary"]["roc_auc"] == pytest.approx(sk.roc_auc_score(y, s), abs=1e-12)
    assert report_json["video"]["summary"]["ap"] == pytest.approx(sk.average_precision_score(y, s), abs=1e-12)


def _label(path: str) -> int:
    return 1 if "/1_fake/" in path else 0


def test_evaluate_matches_sklearn_on_the_jsonl_scores(labelled, tmp_path):
    out = tmp_path / "scan.jsonl"
    scan([labelled], BOTH, out, progress=False)
    lines = read_lines(out)
    # several detectors: the combined verdict by default; one detector's rows on request
    report = evaluate(labelled, results=out, output_dir=tmp_path / "combined")
    _sklearn_check(json.loads((tmp_path / "combined" / "report.json").read_text()),
                   [(_label(line["media_path"]), line["combined"]["score"]) for line in lines])
    assert report.counts.ok == 8 and report.detector_ids == ["combined:mean"]
    evaluate(labelled, results=out, output_dir=tmp_path / "visual", detector="fake-visual")
    _sklearn_check(json.loads((tmp_path / "visual" / "report.json").read_text()),
                   [(_label(line["media_path"]), line["results"][0]["score"]) for line in lines])
    assert {"report.md", "roc.svg", "pr.svg"} <= {p.name for p in (tmp_path / "visual").iterdir()}
    with pytest.raises(InvalidOptionsError):
        evaluate(labelled, results=out, output_dir=tmp_path / "x", detector="LIPFD-V1")


# --------------------------------------------------------------------------- CLI (subprocess)
CLI_MODULE = '''
import sys, time
import click
from forensics_core.cli.batch import evaluate_command, scan_command
from forensics_core.testing import AudioFakeDetector, FakeDetector, registered

class SlowFake(FakeDetector):
    card = FakeDetector.card.model_copy(update={"id": "FAKE-SLOW", "aliases": []})
    def _analyze(self, path, options):
        time.sleep(0.5)
        return super()._analyze(path, options)

@click.group()
def main():
    pass

main.add_command(scan_command, "scan")
main.add_command(evaluate_command, "evaluate")

if __name__ == "__main__":
    with registered(FakeDetector, AudioFakeDetector, SlowFake):
        main()
'''


@pytest.fixture
def cli(tmp_path):
    (tmp_path / "scan_cli_under_test.py").write_text(textwrap.dedent(CLI_MODULE))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(tmp_path), os.environ.get("PYTHONPATH", "")])}

    def run(*args: str, **kw) -> subprocess.CompletedProcess:
        kw.setdefault("env", env)
        return subprocess.run([sys.executable, "-m", "scan_cli_under_test", *map(str, args)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, **kw)

    run.env, run.cwd = env, tmp_path
    return run


def test_cli_scan_sha256_key_and_exit_codes(cli, corpus, tmp_path):
    root = _copy(corpus, tmp_path)
    out = tmp_path / "sha.jsonl"
    proc = cli("scan", root, "--model", "FAKE-VISUAL", "--key", "sha256", "--output", out, "--json", "-o", "frames=4")
    assert proc.returncode == 3, proc.stderr  # some media errors
    summary = json.loads(proc.stdout)
    assert (summary["total"], summary["ok"], summary["error"]) == (6, 4, 2)
    lines = read_lines(out)
    for line in lines:
        assert set(line["file_key"]) == {"path", "sha256"}
        if line["results"][0]["status"] == "ok":
            assert line["results"][0]["frames_analyzed"] == 4  # the option reached the detector
    good = root / "good_a.mp4"
    assert next(x for x in lines if x["media_path"] == str(good))["file_key"]["sha256"] == hashlib.sha256(good.read_bytes()).hexdigest()
    os.utime(good, ns=(0, 10**18))  # same bytes, new mtime: a content key does not care
    assert json.loads(cli("scan", root, "-m", "FAKE-VISUAL", "--key", "sha256", "--output", out, "--json").stdout)["skipped_resumed"] == 6
    summary = json.loads(cli("scan", root, "-m", "FAKE-VISUAL", "--output", out, "--no-resume", "--json").stdout)
    assert summary["analyzed"] == 6 and len(read_lines(out)) == 6

    only_good = cli("scan", root / "good_a.mp4", root / "sub", "-m", "FAKE-VISUAL", "--output", tmp_path / "g.jsonl")
    assert only_good.returncode == 0 and "2 files (2 analysed, 0 resumed): 2 ok" in only_good.stdout
    assert only_good.stderr == "" or "Traceback" not in only_good.stderr
    assert cli("scan", root, "-m", "NO-SUCH-MODEL", "--output", tmp_path / "n.jsonl").returncode == 4
    assert cli("scan", root, "-m", "FAKE-VISUAL", "-o", "frames=0", "--output", tmp_path / "n.jsonl").returncode == 2
    assert cli("scan", root, "-m", "FAKE-VISUAL", "-m", "FAKE-AUDIO", "--weights", good, "--output", out).returncode == 2


def test_cli_evaluate_folder(cli, labelled, tmp_path):
    proc = cli("evaluate", labelled, "--output-dir", tmp_path / "rep", "-m", "FAKE-VISUAL", "--json", "--quiet")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["counts"]["ok"] == 8 and result["detector_ids"] == ["FAKE-VISUAL"]
    lines = read_lines(tmp_path / "rep" / "results.jsonl")
    _sklearn_check(json.loads((tmp_path / "rep" / "report.json").read_text()),
                   [(_label(line["media_path"]), line["results"][0]["score"]) for line in lines])
    again = cli("evaluate", labelled, "--results", tmp_path / "rep" / "results.jsonl", "--output-dir", tmp_path / "rep2")
    assert again.returncode == 0 and "ROC AUC" in again.stdout


def test_cli_evaluate_prints_without_output_dir(cli, labelled, tmp_path):
    """No --output-dir: the scan goes to a temporary folder that is removed; metrics are printed; nothing is written."""
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    before = sorted(p.relative_to(labelled) for p in labelled.rglob("*"))
    env = {**cli.env, "TMPDIR": str(tmpdir)}
    proc = cli("evaluate", labelled, "-m", "FAKE-VISUAL", "--quiet", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["output_dir"] is None and result["counts"]["ok"] == 8 and result["video"]["roc_auc"] is not None
    assert set(result["misclassified"]) <= {str(p) for p in labelled.rglob("*.mp4")}
    assert len(result["misclassified"]) == result["video"]["fp"] + result["video"]["fn"]
    text = cli("evaluate", labelled, "-m", "FAKE-VISUAL", "--quiet", env=env)
    assert text.returncode == 0 and "ROC AUC" in text.stdout and "misclassified at threshold 0.5:" in text.stdout
    assert "report:" not in text.stdout
    assert list(tmpdir.iterdir()) == [] and sorted(p.relative_to(labelled) for p in labelled.rglob("*")) == before


def test_cli_sigint_stops_cleanly_and_resumes(cli, corpus, tmp_path):
    root = _copy(corpus, tmp_path)
    out = tmp_path / "slow.jsonl"
    args = [sys.executable, "-m", "scan_cli_under_test", "scan", str(root), "-m", "FAKE-SLOW", "--output", str(out),
            "--workers", "1", "--json"]
    proc = subprocess.Popen(args, cwd=cli.cwd, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not out.exists() or out.read_bytes().count(b"\n") < 1):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    summary = json.loads(stdout)
    assert summary["interrupted"] and 1 <= summary["analyzed"] < 6
    data = out.read_bytes()
    assert data.endswith(b"\n") and len(read_lines(out)) == summary["analyzed"]
    resumed = json.loads(cli("scan", root, "-m", "FAKE-SLOW", "--output", out, "--json").stdout)
    assert resumed["skipped_resumed"] == summary["analyzed"] and resumed["analyzed"] == 6 - summary["analyzed"]
    assert sorted(line["media_path"] for line in read_lines(out)) == sorted(str(p) for p in discover([root]))


# --------------------------------------------------------------------------- Ray
def test_ray_backend_writes_the_same_lines_as_local(corpus, tmp_path):
    ray = pytest.importorskip("ray")
    local = tmp_path / "local.jsonl"
    scan([corpus], BOTH, local, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        # actors are other processes: they get importable classes / "module:Class" targets, not this process's registry
        summary = scan([corpus], ["forensics_core.testing:FakeDetector", AudioFakeDetector], tmp_path / "ray.jsonl",
                       backend="ray", progress=False)
        assert ray.is_initialized()  # a cluster the caller started is left running
    finally:
        ray.shutdown()
    assert summary.backend == "ray" and (summary.ok, summary.error) == (4, 2)
    key = lambda line: line["media_path"]  # noqa: E731
    assert sorted(map(_strip, read_lines(tmp_path / "ray.jsonl")), key=key) == sorted(map(_strip, read_lines(local)), key=key)

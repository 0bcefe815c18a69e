"""Localisation AP/AR against the official AV-Deepfake1M evaluator, and ``evaluate --segments``.

The official evaluator is the Rust extension ``avdeepfake1m._evaluation`` of the PyPI
package ``avdeepfake1m`` 0.0.4. The package's ``__init__`` imports torch, pandas,
lightning and torchmetrics (and its metadata pins numpy<2), so it is installed with
``--no-deps`` (.ci/run) and its extension is loaded here from the installed file, without
running the package's ``__init__``: the same compiled code, nothing else.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from forensics_core.batch.evaluate import evaluate
from forensics_core.batch.localisation import (
    AP_IOU_THRESHOLDS,
    AR_IOU_THRESHOLDS,
    AR_PROPOSALS,
    load_truth,
    localisation_metrics,
    match_truth_to_paths,
    proposals_from_segments,
)
from forensics_core.errors import InvalidOptionsError

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def official():
    """``ap_ar_1d`` of the installed avdeepfake1m, called on JSON files as its users call it."""
    spec = importlib.util.find_spec("avdeepfake1m")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("avdeepfake1m is not installed (.ci/run installs it: pip install --no-deps avdeepfake1m==0.0.4)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    so = next(folder.glob("_evaluation*.so"), None) or next(folder.glob("_evaluation*.pyd"))
    loader = importlib.machinery.ExtensionFileLoader("avdeepfake1m._evaluation", str(so))
    module = importlib.util.module_from_spec(importlib.util.spec_from_file_location(loader.name, so, loader=loader))
    loader.exec_module(module)

    def run(truth: dict, proposals: dict, tmp: Path) -> dict:
        (tmp / "proposals.json").write_text(json.dumps(proposals))
        (tmp / "metadata.json").write_text(json.dumps([{"file": k, "fake_segments": v} for k, v in truth.items()]))
        out = module.ap_ar_1d(str(tmp / "proposals.json"), str(tmp / "metadata.json"), "file", "fake_segments", 1.0,
                              list(AP_IOU_THRESHOLDS), list(AR_PROPOSALS), list(AR_IOU_THRESHOLDS))
        # its keys are float32 thresholds (0.8999999761581421): key them as ours, in order
        return {"ap": dict(zip((f"{t:g}" for t in AP_IOU_THRESHOLDS), out["ap"].values())),
                "ar": {str(n): out["ar"][n] for n in AR_PROPOSALS}}

    return run


def _case(rng: random.Random) -> tuple[dict, dict]:
    """Files with 0-5 fake segments and 1-60 proposals: near misses, exact hits, ties, nested and overlapping ones."""
    truth, proposals = {}, {}
    for f in range(rng.randint(1, 12)):
        duration = rng.uniform(2, 20)
        segs = []
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3, 5])):
            start = round(rng.uniform(0, duration - 0.2), 2)
            segs.append([start, round(min(duration, start + rng.uniform(0.04, 3)), 2)])
        props = []
        for _ in range(rng.choice([1, 1, 2, 5, 10, 40, 60])):
            score = round(rng.random(), rng.choice([1, 2, 6]))  # one decimal: many ties across files
            if segs and rng.random() < 0.5:
                g = rng.choice(segs)
                if rng.random() < 0.15:
                    props.append([score, g[0], g[1]])  # an exact hit
                    continue
                start, end = max(0.0, g[0] + rng.uniform(-0.3, 0.3)), g[1] + rng.uniform(-0.3, 0.3)
            else:
                start = rng.uniform(0, duration)
                end = start + rng.uniform(0.04, 2)
            start, end = round(start, 2), round(end, 2)
            props.append([score, start, max(end, round(start + 0.04, 2))])
        props.sort(key=lambda r: -r[0])  # the submission form: highest score first
        truth[f"id{f:03d}/clip.mp4"], proposals[f"id{f:03d}/clip.mp4"] = segs, props
    return truth, proposals


def test_equals_the_official_evaluator_on_generated_cases(official, tmp_path):
    rng = random.Random(20241212)
    compared = nontrivial = 0
    worst = 0.0
    while compared < 200:
        truth, proposals = _case(rng)
        if not any(truth.values()):
            continue  # no fake segment at all: AP is undefined (the official gives NaN)
        ref = official(truth, proposals, tmp_path)
        ours = localisation_metrics(truth, proposals)
        for key in ("ap", "ar"):
            for k, v in ref[key].items():
                worst = max(worst, abs(getattr(ours, key)[k] - v))
                assert getattr(ours, key)[k] == pytest.approx(v, abs=1e-6), (compared, key, k, truth, proposals)
        nontrivial += any(0.05 < v < 0.95 for v in ref["ap"].values())
        compared += 1
    assert nontrivial > 100, "the generated cases must exercise partial AP, not only 0 and 1"
    print(f"largest difference from the official evaluator over {compared} cases: {worst:.2e}")


def test_one_perfect_proposal_shows_the_skipped_first_recall_step(official, tmp_path):
    truth, proposals = {"a.mp4": [[1.0, 2.0]]}, {"a.mp4": [[0.9, 1.0, 2.0]]}
    ref = official(truth, proposals, tmp_path)
    ours = localisation_metrics(truth, proposals)
    assert ref["ap"]["0.5"] == 0.0 == ours.ap["0.5"]  # the official evaluator's value
    assert ours.ap_textbook == {"0.5": 1.0, "0.75": 1.0, "0.9": 1.0, "0.95": 1.0}  # the whole area
    assert ref["ar"]["5"] == 1.0 == ours.ar["5"]


def test_textbook_ap_by_hand():
    # ranking: hit, miss, hit over 2 segments -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    truth = {"a": [[0.0, 1.0], [5.0, 6.0]]}
    proposals = {"a": [[0.9, 0.0, 1.0], [0.8, 2.0, 3.0], [0.7, 5.0, 6.0]]}
    m = localisation_metrics(truth, proposals)
    assert m.ap_textbook["0.5"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert m.ap["0.5"] == pytest.approx(0.5 * 2 / 3)  # without the first step (0 -> 1/2 at precision 1)
    assert m.ar["5"] == 1.0 and m.n_proposals == 3 and m.n_segments == 2


def test_strict_iou_and_greedy_matching():
    # IoU exactly 0.5 is not a hit at 0.5; one proposal cannot serve two segments in AP, it can in AR
    m = localisation_metrics({"a": [[0.0, 2.0]]}, {"a": [[1.0, 0.0, 1.0]]})
    assert m.ap_textbook["0.5"] == 0.0 and m.ar["50"] == 0.0
    m = localisation_metrics({"a": [[0.0, 2.0], [0.0, 2.1]]}, {"a": [[1.0, 0.0, 2.0]]})
    assert m.ap_textbook["0.5"] == pytest.approx(0.5)  # one hit of two segments
    assert m.ar["50"] == pytest.approx(1.0)  # AR: any proposal within the first N recalls a segment


def test_a_file_without_proposals_counts_its_segments_as_missed():
    m = localisation_metrics({"a": [[0.0, 1.0]], "b": [[0.0, 1.0]]}, {"a": [[0.9, 0.0, 1.0]]})
    assert m.ar["50"] == pytest.approx(0.5) and m.missing == ["b"]
    assert any("without any proposal" in n for n in m.notes)
    assert localisation_metrics({"a": []}, {"a": [[0.5, 0.0, 1.0]]}).ap["0.5"] is None  # nothing to find


def test_truth_file_errors_and_names(tmp_path):
    bad = {"not json": "{", "not an object": "[1]", "end before start": '{"a.mp4": [[2, 1]]}',
           "not numbers": '{"a.mp4": [["0", 1]]}', "not pairs": '{"a.mp4": [[0, 1, 2]]}'}
    for name, text in bad.items():
        (tmp_path / "t.json").write_text(text)
        with pytest.raises(InvalidOptionsError):
            load_truth(tmp_path / "t.json")
    with pytest.raises(InvalidOptionsError, match="cannot read"):
        load_truth(tmp_path / "missing.json")
    paths = ["/data/fake/id01/a.mp4", "/data/real/id01/a.mp4", "/data/fake/id02/b.mp4"]
    assert match_truth_to_paths(["id02/b.mp4", "fake/id01/a.mp4", "nothing.mp4"], paths) == {
        "id02/b.mp4": "/data/fake/id02/b.mp4", "fake/id01/a.mp4": "/data/fake/id01/a.mp4"}
    with pytest.raises(InvalidOptionsError, match="fits several files"):
        match_truth_to_paths(["id01/a.mp4"], paths)
    assert proposals_from_segments([[1.0, 2.0, 0.7]]) == [[0.7, 1.0, 2.0]]


# ------------------------------------------------------------------ evaluate --segments
def _scan_lines(tmp_path: Path) -> tuple[Path, Path, Path, dict]:
    """A labelled folder, a scan JSONL whose rows carry segments, and the ground truth."""
    root = tmp_path / "labelled"
    rows, truth = [], {}
    rng = random.Random(5)
    for label, names in (("1_fake", ["f1", "f2", "f3"]), ("0_real", ["r1", "r2"])):
        (root / label).mkdir(parents=True)
        for name in names:
            path = root / label / f"{name}.mp4"
            path.write_bytes(b"x")  # labels come from the layout; the media is not read
            segs = [[1.0, 2.5]] if label == "1_fake" else []
            found = sorted(([round(s + rng.uniform(-0.2, 0.2), 2), round(e + rng.uniform(-0.2, 0.2), 2), round(rng.random(), 3)]
                            for s, e in segs * 2), key=lambda x: -x[2])
            rows.append({"media_path": str(path), "file_key": {"path": str(path)},
                         "results": [{"media_path": str(path), "detector_id": "FAKE-VISUAL", "status": "ok",
                                      "score": 0.8 if segs else 0.2, "segments": found, "windows": []}],
                         "combined": {"status": "ok", "method": "mean", "score": 0.8 if segs else 0.2}})
            truth[f"{label}/{name}.mp4"] = segs
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "truth.json").write_text(json.dumps(truth))
    return root, results, tmp_path / "truth.json", {k: next(r["results"][0]["segments"] for r in rows
                                                            if r["media_path"].endswith(k)) for k in truth}


def test_evaluate_segments_gives_the_metrics_of_the_rows(tmp_path):
    root, results, truth_file, found = _scan_lines(tmp_path)
    report = evaluate(root, results=results, segments=truth_file)
    expected = localisation_metrics(load_truth(truth_file), {k: proposals_from_segments(v) for k, v in found.items()})
    assert report.localisation == expected and report.localisation.n_files == 5
    assert 0 < report.localisation.ar["5"] <= 1
    no_segments = tmp_path / "old.jsonl"
    no_segments.write_text("".join(json.dumps({**json.loads(line), "results": [
        {k: v for k, v in json.loads(line)["results"][0].items() if k != "segments"}]}) + "\n"
        for line in results.read_text().splitlines()))
    with pytest.raises(InvalidOptionsError, match="no result row carries segments"):
        evaluate(root, results=no_segments, segments=truth_file)


def test_cli_evaluate_segments_json_and_text(tmp_path):
    root, results, truth_file, _ = _scan_lines(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "forensics_core", "evaluate", str(root), "--results", str(results), "--segments", str(truth_file)]
    proc = subprocess.run([*cmd, "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out["localisation"]["ap"]) == {"0.5", "0.75", "0.9", "0.95"}
    assert set(out["localisation"]["ar"]) == {"50", "30", "20", "10", "5"}
    assert out["output_dir"] is None and set(out["localisation"]["ap_textbook"]) == set(out["localisation"]["ap"])
    text = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert text.returncode == 0 and "localisation AP@IoU 0.5:" in text.stdout and "AR@N" in text.stdout
    assert "report:" not in text.stdout  # nothing written without --output-dir
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labelled", "results.jsonl", "truth.json"]


# ------------------------------------------------------------------ end to end, real clips
def test_scan_segments_evaluated_end_to_end(official, tmp_path):
    """FAKE-VISUAL scores frame brightness; clips brightened over a known stretch give segments there.

    The scan's segments (forensics_core.segments, merged windows) are evaluated against the
    stretches by `evaluate --segments`, and the numbers equal the official evaluator's on the
    same proposals and ground truth.
    """
    from forensics_core.batch.scan import read_lines, scan
    from forensics_core.testing import FakeDetector, registered
    from media_corpus import ffmpeg, make_clip

    root = tmp_path / "labelled"
    base = make_clip(tmp_path / "base.mp4", seconds=3.0, size=(160, 120), fps=25)
    truth = {}
    for label, name, stretch in (("1_fake", "a", (0.4, 1.2)), ("1_fake", "b", (1.0, 2.0)), ("0_real", "c", None)):
        (root / label).mkdir(parents=True, exist_ok=True)
        out = root / label / f"{name}.mp4"
        vf = f"lutyuv=y=val*2.2:enable='between(t,{stretch[0]},{stretch[1] - 0.01})'" if stretch else "null"
        ffmpeg(["-i", base, "-vf", vf, "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-an", out])
        truth[f"{label}/{name}.mp4"] = [list(stretch)] if stretch else []
    (tmp_path / "truth.json").write_text(json.dumps(truth))
    with registered(FakeDetector):
        scan([root], ["FAKE-VISUAL"], tmp_path / "scan.jsonl", options={"FAKE-VISUAL": {"frames": 64, "threshold": 0.5}},
             progress=False)
    rows = {Path(line["media_path"]).name: line["results"][0] for line in read_lines(tmp_path / "scan.jsonl")}
    assert rows["a.mp4"]["segments"][0][:2] == pytest.approx([0.4, 1.2], abs=0.05)
    assert rows["b.mp4"]["segments"][0][:2] == pytest.approx([1.0, 2.0], abs=0.05)
    assert rows["c.mp4"]["segments"] == []
    report = evaluate(root, results=tmp_path / "scan.jsonl", segments=tmp_path / "truth.json")
    proposals = {k: proposals_from_segments(rows[Path(k).name]["segments"]) for k in truth}
    proposals["0_real/c.mp4"] = [[0.0, 0.0, 0.04]]  # the official reader needs one proposal per file; IoU 0 with nothing
    ref = official(truth, proposals, tmp_path)
    loc = report.localisation
    assert loc.n_files == 3 and loc.n_segments == 2
    assert loc.ar["5"] == pytest.approx(ref["ar"]["5"], abs=1e-6) and loc.ar["5"] == 1.0
    for t, value in ref["ap"].items():
        assert loc.ap[t] == pytest.approx(value, abs=1e-6)
    assert loc.ap_textbook["0.5"] == 1.0  # both stretches found, nothing else proposed

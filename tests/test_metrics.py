"""Metrics are checked against scikit-learn; evaluation against hand-built rows and label sources.

scikit-learn is a test-only dependency: the code under test is pure numpy.
"""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

sk = pytest.importorskip("sklearn.metrics")

from forensics_core.batch import metrics as m  # noqa: E402
from forensics_core.errors import InvalidOptionsError  # noqa: E402
from forensics_core.batch.evaluate import EvaluationReport, evaluate_rows, load_labels, write_report  # noqa: E402


def _cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(20240601)
    y = rng.integers(0, 2, 300)
    noisy = np.clip(0.3 * y + 0.7 * rng.random(300), 0, 1)
    return {
        "random": (y, noisy),
        "random_ties": (y, np.round(noisy, 1)),  # many tied scores, across classes
        "all_tied": (np.array([0, 1, 0, 1, 1]), np.full(5, 0.5)),
        "perfect": (np.array([0, 0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.7, 0.9])),
        "inverted": (np.array([0, 0, 0, 1, 1]), np.array([0.9, 0.8, 0.7, 0.2, 0.1])),
        "small": (np.array([0, 1, 1, 0, 1, 0]), np.array([0.1, 0.4, 0.35, 0.8, 0.65, 0.5])),
        "imbalanced": (np.r_[np.zeros(97, int), np.ones(3, int)], np.linspace(0, 1, 100)),
    }


CASES = _cases()
THRESHOLDS = [0.0, 0.3, 0.5, 0.65, 1.0]


@pytest.fixture(params=sorted(CASES))
def case(request):
    return CASES[request.param]


def _sk_confusion(y, s, t):
    tn, fp, fn, tp = sk.confusion_matrix(y, (s >= t).astype(int), labels=[0, 1]).ravel()
    return {"tp": tp, "fp": fp, "tn": tn, "fn": fn}


# ---- curves and ranking metrics ---------------------------------------------------------

@pytest.mark.parametrize("drop", [True, False])
def test_roc_curve_matches_sklearn(case, drop):
    y, s = case
    for ours, ref in zip(m.roc_curve(y, s, drop_intermediate=drop), sk.roc_curve(y, s, drop_intermediate=drop)):
        np.testing.assert_allclose(ours, ref)


@pytest.mark.parametrize("drop", [True, False])
def test_precision_recall_curve_matches_sklearn(case, drop):
    y, s = case
    ours = m.precision_recall_curve(y, s, drop_intermediate=drop)
    ref = sk.precision_recall_curve(y, s, drop_intermediate=drop)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b)


def test_auc_and_ap_match_sklearn(case):
    y, s = case
    assert m.roc_auc(y, s) == pytest.approx(sk.roc_auc_score(y, s), abs=1e-12)
    assert m.average_precision(y, s) == pytest.approx(sk.average_precision_score(y, s), abs=1e-12)


def test_known_values():
    y, s = CASES["perfect"]
    assert m.roc_auc(y, s) == 1.0 and m.average_precision(y, s) == 1.0
    assert m.equal_error_threshold(y, s) == (0.7, 0.0)
    y, s = CASES["inverted"]
    assert m.roc_auc(y, s) == 0.0
    assert m.equal_error_threshold(y, s)[1] == 1.0
    y, s = CASES["all_tied"]
    assert m.roc_auc(y, s) == 0.5
    assert m.equal_error_threshold(y, s) == (0.5, 0.5)  # midway between (0,0) and (1,1)


def test_ties_do_not_depend_on_input_order():
    y, s = CASES["random_ties"]
    perm = np.random.default_rng(1).permutation(y.size)
    assert m.summarize(y, s) == m.summarize(y[perm], s[perm])
    for a, b in zip(m.roc_curve(y, s), m.roc_curve(y[perm], s[perm])):
        np.testing.assert_array_equal(a, b)


def test_ap_is_computed_from_scores_not_thresholded_labels():
    # Perfect ranking, but every score is below 0.5: thresholding throws the ranking away.
    y, s = np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4])
    thresholded_ap = sk.average_precision_score(y, (s >= 0.5).astype(int))
    assert thresholded_ap == pytest.approx(0.5)
    assert m.average_precision(y, s) == pytest.approx(sk.average_precision_score(y, s)) == 1.0
    assert m.summarize(y, s)["ap"] == 1.0


# ---- threshold metrics -------------------------------------------------------------------

@pytest.mark.parametrize("t", THRESHOLDS)
def test_threshold_metrics_match_sklearn(case, t):
    y, s = case
    ref = _sk_confusion(y, s, t)
    assert m.confusion_at(y, s, t) == ref
    pred = (s >= t).astype(int)
    assert m.accuracy(y, s, t) == pytest.approx(sk.accuracy_score(y, pred))
    assert m.balanced_accuracy(y, s, t) == pytest.approx(sk.balanced_accuracy_score(y, pred))
    fpr, fnr = m.fpr_fnr_at(y, s, t)
    assert fpr == pytest.approx(ref["fp"] / (ref["fp"] + ref["tn"]))
    assert fnr == pytest.approx(ref["fn"] / (ref["fn"] + ref["tp"]))
    # Same numbers from the ROC curve: FPR on the x axis, FNR = 1 - TPR.
    sk_fpr, sk_tpr, sk_thr = sk.roc_curve(y, s, drop_intermediate=False)
    i = np.searchsorted(-sk_thr, -t, side="right") - 1  # last curve point with threshold >= t
    assert fpr == pytest.approx(sk_fpr[i]) and fnr == pytest.approx(1 - sk_tpr[i])


def test_fpr_fnr_not_swapped_hand_computed():
    # Reals: 0.9 is called fake (FP); 0.1, 0.2, 0.3 are not (TN).  FPR = 1/4.
    # Fakes: 0.8 is caught (TP); 0.4 is missed (FN).              FNR = 1/2.
    y = np.array([0, 0, 0, 0, 1, 1])
    s = np.array([0.9, 0.1, 0.2, 0.3, 0.8, 0.4])
    assert m.confusion_at(y, s, 0.5) == {"tp": 1, "fp": 1, "tn": 3, "fn": 1}
    assert m.fpr_fnr_at(y, s, 0.5) == (0.25, 0.5)
    summary = m.summarize(y, s, 0.5)
    assert (summary["fpr"], summary["fnr"]) == (0.25, 0.5)
    # The released LipFD script's unpacking gives the two rates the other way round.
    tp, fn, fp, tn = sk.confusion_matrix(y, s >= 0.5).ravel()
    assert (fp / (fp + tn), fn / (fn + tp)) == (0.5, 0.25)


def test_threshold_is_inclusive():
    assert m.confusion_at([0, 1], [0.5, 0.5], 0.5) == {"tp": 1, "fp": 1, "tn": 0, "fn": 0}


# ---- equal error rate --------------------------------------------------------------------

def test_eer_matches_reference_from_sklearn_roc(case):
    y, s = case
    fpr, tpr, _ = sk.roc_curve(y, s, drop_intermediate=False)
    d = fpr - (1 - tpr)  # strictly increasing along the curve
    ref_eer = float(np.interp(0.0, d, fpr))
    # Reference threshold: the observed score whose |FPR - FNR| is smallest (ties: lower score).
    best = None
    for t in np.unique(s):
        c = _sk_confusion(y, s, t)
        gap = abs(c["fp"] / (c["fp"] + c["tn"]) - c["fn"] / (c["fn"] + c["tp"]))
        if best is None or gap <= best[0] + 1e-12:
            best = (gap, t)
    thr, eer = m.equal_error_threshold(y, s)
    assert eer == pytest.approx(ref_eer, abs=1e-12)
    assert thr == pytest.approx(best[1])
    summary = m.summarize(y, s)
    assert summary["eer"] == eer and summary["eer_threshold"] == thr
    assert (summary["fpr_at_eer_threshold"], summary["fnr_at_eer_threshold"]) == m.fpr_fnr_at(y, s, thr)


# ---- summary and degenerate inputs -------------------------------------------------------

def test_summarize_matches_sklearn(case):
    y, s = case
    out = m.summarize(y, s, 0.5)
    pred = (s >= 0.5).astype(int)
    assert (out["n"], out["n_real"], out["n_fake"]) == (y.size, int((y == 0).sum()), int((y == 1).sum()))
    assert out["acc"] == pytest.approx(sk.accuracy_score(y, pred))
    assert out["balanced_acc"] == pytest.approx(sk.balanced_accuracy_score(y, pred))
    assert out["ap"] == pytest.approx(sk.average_precision_score(y, s))
    assert out["roc_auc"] == pytest.approx(sk.roc_auc_score(y, s))
    assert out["notes"] == []
    json.dumps(out, allow_nan=False)
    assert all(type(v) in (int, float, list) for v in out.values())  # no numpy scalars


@pytest.mark.parametrize("y", [[0, 0, 0], [1, 1, 1]], ids=["only_real", "only_fake"])
def test_single_class_gives_none_not_nan(y):
    s = [0.2, 0.6, 0.9]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # we never warn; sklearn would
        out = m.summarize(y, s)
        assert m.roc_auc(y, s) is None and m.equal_error_threshold(y, s) == (None, None)
    for key in ("ap", "roc_auc", "eer", "eer_threshold", "fpr_at_eer_threshold", "fnr_at_eer_threshold"):
        assert out[key] is None, key
    assert out["acc"] == pytest.approx(sk.accuracy_score(y, [0, 1, 1]))
    assert out["balanced_acc"] == out["acc"]
    if y[0] == 0:
        assert out["fpr"] == pytest.approx(2 / 3) and out["fnr"] is None
        assert m.average_precision(y, s) is None
    else:
        assert out["fnr"] == pytest.approx(1 / 3) and out["fpr"] is None
        assert m.average_precision(y, s) == pytest.approx(sk.average_precision_score(y, s)) == 1.0
    assert out["notes"] and any("undefined" in n for n in out["notes"])
    json.dumps(out, allow_nan=False)


def test_empty_input():
    out = m.summarize([], [])
    assert out["n"] == 0 and out["notes"]
    assert all(out[k] is None for k in ("acc", "balanced_acc", "ap", "roc_auc", "fpr", "fnr", "eer"))
    json.dumps(out, allow_nan=False)
    fpr, tpr, thr = m.roc_curve([], [])
    assert thr.tolist() == [math.inf]
    p, r, t = m.precision_recall_curve([], [])
    assert p.tolist() == [1.0] and r.tolist() == [0.0] and t.size == 0


@pytest.mark.parametrize("y,s", [([0, 2], [0.1, 0.2]), ([0, 1], [0.1, float("nan")]), ([0, 1], [0.1])])
def test_malformed_input_raises(y, s):
    with pytest.raises(ValueError):
        m.summarize(y, s)


# ---- labels ------------------------------------------------------------------------------

def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0")
    return path


def test_load_labels_from_avlips_tree(tmp_path):
    root = tmp_path / "AVLips"
    real = [_touch(root / "0_real" / "a.mp4"), _touch(root / "0_real" / "sub" / "b.MOV")]
    fake = [_touch(root / "1_fake" / "c.mkv"), _touch(root / "val" / "1_fake" / "d.webm")]
    _touch(root / "1_fake" / "notes.txt")
    _touch(root / "other" / "e.mp4")  # under neither label folder: ignored
    labels = load_labels(root)
    assert labels == {**{str(p.resolve()): 0 for p in real}, **{str(p.resolve()): 1 for p in fake}}


def test_load_labels_from_csv(tmp_path):
    absolute = tmp_path / "elsewhere" / "z.mp4"
    csv_path = tmp_path / "meta" / "labels.csv"
    csv_path.parent.mkdir()
    csv_path.write_text(
        "\ufeffpath,label\nvids/a.mp4,real\nvids/b.mp4,FAKE\n\n"
        f"{absolute},1\n../up.mp4, 0 \nvids/a.mp4,0\n", encoding="utf-8")
    labels = load_labels(csv_path)
    base = csv_path.parent.resolve()
    assert labels == {str(base / "vids" / "a.mp4"): 0, str(base / "vids" / "b.mp4"): 1,
                      str(absolute.resolve()): 1, str(tmp_path.resolve() / "up.mp4"): 0}


@pytest.mark.parametrize("text", ["file,label\na.mp4,0\n", "path,label\na.mp4,maybe\n",
                                  "path,label\na.mp4,0\na.mp4,fake\n", "path,label\n"])
def test_load_labels_rejects_bad_csv(tmp_path, text):
    (tmp_path / "l.csv").write_text(text)
    with pytest.raises(InvalidOptionsError):
        load_labels(tmp_path / "l.csv")


def test_load_labels_rejects_missing_or_empty_source(tmp_path):
    with pytest.raises(InvalidOptionsError):
        load_labels(tmp_path / "nope")
    with pytest.raises(InvalidOptionsError):
        load_labels(tmp_path)


# ---- evaluate_rows and write_report ------------------------------------------------------

@pytest.fixture
def scenario(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    v = {name: str((tmp_path / f"{name}.mp4").resolve()) for name in "abcdefgh"}
    labels = {v["a"]: 1, v["b"]: 0, v["c"]: 1, v["d"]: 0, v["e"]: 1, v["f"]: 0, v["g"]: 1}
    rows = [
        {"media_path": v["a"], "status": "ok", "score": 0.9, "detector_id": "x",
         "windows": [{"index": 0, "score": 0.8}, {"index": 1, "score": 0.95}]},
        {"media_path": "b.mp4", "status": "ok", "score": 0.6,  # relative: resolved against the cwd
         "windows": [{"index": 0, "score": 0.4}, {"index": 1, "score": float("nan")}]},
        {"media_path": v["c"], "status": "ok", "score": 0.3, "error": None},  # no windows
        {"media_path": v["d"], "status": "ok", "score": 0.1, "windows": [{"index": 0, "score": 0.2}]},
        {"media_path": v["e"], "status": "abstained", "score": None, "abstain_reason": "no face"},
        {"media_path": v["f"], "status": "error", "score": None,
         "error": {"type": "MediaProcessingError", "code": "decode_failed", "message": "bad file"}},
        {"media_path": v["h"], "status": "ok", "score": 0.5},  # not in the labels
        {"media_path": v["a"], "status": "ok", "score": 0.1},  # duplicate: the first row wins
        {"media_path": v["b"], "status": "ok", "score": None},  # invalid
        {"status": "ok", "score": 0.5},  # invalid: no path
    ]
    return v, labels, rows


def test_evaluate_rows_buckets_every_row(scenario):
    v, labels, rows = scenario
    report = evaluate_rows(iter(rows), labels, threshold=0.5)
    c = report.counts
    assert (c.ok, c.abstained, c.error, c.unlabeled, c.invalid, c.duplicate, c.missing) == (4, 1, 1, 1, 2, 1, 1)
    assert c.ok + c.abstained + c.error + c.unlabeled + c.invalid + c.duplicate == report.n_rows == len(rows)
    assert [e.media_path for e in report.abstained] == [v["e"]] and report.abstained[0].message == "no face"
    assert [(e.media_path, e.code) for e in report.errored] == [(v["f"], "decode_failed")]
    assert report.unlabeled == [v["h"]] and report.missing == [v["g"]] and report.duplicates == [v["a"]]
    assert [i.index for i in report.invalid] == [8, 9]
    assert report.coverage == pytest.approx(4 / 7) and report.n_labels == 7
    assert report.detector_ids == ["x"]
    assert any("window" in n and "skipped" in n for n in report.notes)  # the NaN window


def test_evaluate_rows_metrics(scenario):
    v, labels, rows = scenario
    report = evaluate_rows(rows, labels, threshold=0.5)
    expected = m.summarize([1, 0, 1, 0], [0.9, 0.6, 0.3, 0.1], 0.5)
    assert report.video.summary.model_dump() == expected
    assert report.video.summary.fpr == 0.5 and report.video.summary.fnr == 0.5
    assert [(s.label, s.score, s.predicted, s.n_windows) for s in report.videos] == [
        (1, 0.9, 1, 2), (0, 0.6, 1, 1), (1, 0.3, 0, 0), (0, 0.1, 0, 1)]
    win = m.summarize([1, 1, 0, 0], [0.8, 0.95, 0.4, 0.2], 0.5)
    assert report.window is not None
    assert report.window.summary.roc_auc == win["roc_auc"] == 1.0
    assert report.window.summary.n == 4
    assert evaluate_rows(rows, labels, window_level=False).window is None


def test_evaluate_rows_accepts_model_objects(tmp_path):
    class Row:  # stands in for a pydantic result model
        def __init__(self, **kw):
            self.kw = kw

        def model_dump(self):
            return dict(self.kw)

    path = str(tmp_path / "x.mp4")
    report = evaluate_rows([Row(media_path=path, status="ok", score=0.7)], {path: 1})
    assert report.counts.ok == 1 and report.window is None
    assert report.video.summary.roc_auc is None and report.video.summary.notes


def _svg_curves(path: Path) -> list[list[tuple[float, float]]]:
    """The curves plotted in an SVG plot (parsed as XML: a broken file fails here), as point lists."""
    import xml.etree.ElementTree as ET

    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return [[tuple(map(float, p.split(","))) for p in line.get("points").split()]
            for line in root.iter("{http://www.w3.org/2000/svg}polyline") if line.get("class") == "curve"]


def test_write_report(scenario, tmp_path):
    v, labels, rows = scenario
    report = evaluate_rows(rows, labels)
    out = tmp_path / "out" / "nested"
    paths = write_report(report, out)
    assert set(paths) == {"json", "md", "roc", "pr"}
    assert sorted(p.name for p in out.iterdir()) == ["pr.svg", "report.json", "report.md", "roc.svg"]
    roc, pr = _svg_curves(paths["roc"]), _svg_curves(paths["pr"])
    assert len(roc) == 2 and len(pr) == 2  # video and window levels
    # the video ROC has one vertex per distinct threshold (plus the origin), inside the plot
    assert len(roc[0]) == len(report.video.curves.fpr) and len({p for p in roc[0]}) > 2
    text = paths["json"].read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert EvaluationReport.model_validate_json(text) == report
    md = paths["md"].read_text()
    assert "| ROC AUC |" in md and "| metric | video | window |" in md
    assert "decode_failed" in md and "Missing" in md
    assert "![ROC curve](roc.svg)" in md and "![Precision-recall curve](pr.svg)" in md
    wrong = md.split("## Misclassified at threshold 0.5 (2)", 1)[1].split("##", 1)[0]
    assert wrong.index(v["c"]) < wrong.index(v["b"])  # the most confidently wrong first
    assert "fake video called real (score 0.3000)" in wrong and "real video called fake (score 0.6000)" in wrong


def test_write_report_single_class(tmp_path):
    path = str(tmp_path / "x.mp4")
    report = evaluate_rows([{"media_path": path, "status": "ok", "score": 0.2}], {path: 0})
    paths = write_report(report, tmp_path / "r")
    assert _svg_curves(paths["roc"]) == [] and _svg_curves(paths["pr"]) == []
    assert "undefined: needs real and fake samples" in paths["roc"].read_text()
    data = json.loads(paths["json"].read_text(), parse_constant=lambda c: pytest.fail(c))
    assert data["video"]["summary"]["roc_auc"] is None and data["video"]["curves"]["fpr"] is None

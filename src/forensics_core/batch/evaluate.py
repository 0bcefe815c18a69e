"""Score detector result rows against ground-truth labels and write a report.

Why this is more than a loop over rows: a detector can abstain or fail on a
video, and rows can refer to videos that have no label (or labels can lack a
row). Dropping those silently inflates metrics, so every row lands in exactly
one bucket (ok / abstained / error / unlabeled / invalid / duplicate), every
label without a row is listed as missing, and the report shows coverage next
to the metrics. Metrics are computed from scores by :mod:`forensics_core.batch.metrics`.

Paths are compared as resolved absolute strings (``Path.resolve()``, so
symlinks are followed); a relative ``media_path`` in a row is resolved against
the current working directory.
"""
from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from ..errors import ForensicsError, InvalidOptionsError
from . import metrics
from .evaluate_files import write_report
from .localisation import LocalisationReport
from .scan import read_lines, scan
from .worker import ModelSpec, _card_id

MEDIA_EXTENSIONS = frozenset(
    {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})
LABEL_DIRS = {"0_real": 0, "1_fake": 1}
_LABEL_WORDS = {"0": 0, "1": 1, "real": 0, "fake": 1}
_CURVE_POINTS = 1000  # curves stored in the report are thinned to about this many points


def _key(path: str | os.PathLike[str]) -> str:
    return str(Path(path).expanduser().resolve())


def load_labels(source: str | os.PathLike[str]) -> dict[str, int]:
    """Ground truth as ``{resolved absolute path: 0 real | 1 fake}``.

    ``source`` is either a folder in the AVLips layout (media files anywhere
    below a ``0_real`` or ``1_fake`` folder; the deepest such folder wins;
    files outside both are ignored) or a CSV with a ``path,label`` header
    (label 0/1 or real/fake, case-insensitive; relative paths are resolved
    against the CSV's folder). Raises ``InvalidOptionsError`` when the source
    is missing, malformed, contradicts itself, or yields no labels.
    """
    src = Path(source).expanduser()
    if src.is_dir():
        labels = _labels_from_tree(src)
    elif src.is_file():
        labels = _labels_from_csv(src)
    else:
        raise InvalidOptionsError(f"label source {str(src)!r} does not exist",
                                  hint="pass a folder with 0_real/1_fake subfolders or a path,label CSV")
    if not labels:
        raise InvalidOptionsError(f"no labelled media found in {str(src)!r}",
                                  hint="expected media files under 0_real/ and 1_fake/, or CSV rows")
    return labels


def _labels_from_tree(root: Path) -> dict[str, int]:
    labels: dict[str, int] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in MEDIA_EXTENSIONS or not path.is_file():
            continue
        parts = [p.lower() for p in path.relative_to(root).parts[:-1]]
        found = [LABEL_DIRS[p] for p in parts if p in LABEL_DIRS]
        if found:
            labels[_key(path)] = found[-1]
    return labels


def _labels_from_csv(path: Path) -> dict[str, int]:
    labels: dict[str, int] = {}
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = {(f or "").strip().lower(): f for f in reader.fieldnames or []}
        if "path" not in fields or "label" not in fields:
            raise InvalidOptionsError(f"{path}: header must contain 'path,label', got {reader.fieldnames}")
        for line, rec in enumerate(reader, start=2):
            raw_path = (rec.get(fields["path"]) or "").strip()
            raw_label = (rec.get(fields["label"]) or "").strip().lower()
            if not raw_path and not raw_label:
                continue
            if not raw_path or raw_label not in _LABEL_WORDS:
                raise InvalidOptionsError(f"{path}:{line}: bad row (path={raw_path!r}, label={raw_label!r})",
                                          hint="labels are 0/1 or real/fake")
            p = Path(raw_path).expanduser()
            key = _key(p if p.is_absolute() else path.parent / p)
            label = _LABEL_WORDS[raw_label]
            if labels.setdefault(key, label) != label:
                raise InvalidOptionsError(f"{path}:{line}: {raw_path!r} is labelled both real and fake")
    return labels


class RowCounts(BaseModel):
    """Each row is counted in exactly one of the first six fields; ``missing`` counts labels without a row."""
    ok: int = 0
    abstained: int = 0
    error: int = 0
    unlabeled: int = 0
    invalid: int = 0
    duplicate: int = 0
    missing: int = 0


class ExcludedRow(BaseModel):
    """A labelled video that got no score: ``code`` is the error code or "abstained"."""
    media_path: str
    code: str | None = None
    message: str | None = None


class InvalidRow(BaseModel):
    index: int  # 0-based position in the input rows
    media_path: str | None = None
    reason: str


class MetricSummary(BaseModel):
    """The output of :func:`forensics_core.batch.metrics.summarize` (rates in [0, 1], None if undefined)."""
    n: int
    n_real: int
    n_fake: int
    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int
    acc: float | None
    balanced_acc: float | None
    ap: float | None
    roc_auc: float | None
    fpr: float | None
    fnr: float | None
    eer: float | None
    eer_threshold: float | None
    fpr_at_eer_threshold: float | None
    fnr_at_eer_threshold: float | None
    notes: list[str] = []


class Curves(BaseModel):
    """ROC and PR points for plotting (thinned); None when undefined (one class only)."""
    fpr: list[float] | None = None
    tpr: list[float] | None = None
    recall: list[float] | None = None
    precision: list[float] | None = None


class LevelResult(BaseModel):
    summary: MetricSummary
    curves: Curves


class VideoScore(BaseModel):
    media_path: str
    label: int
    score: float
    predicted: int  # 1 = called fake at the report's threshold
    n_windows: int


class EvaluationReport(BaseModel):
    """Everything needed to audit an evaluation; serialises to ``report.json``."""
    schema_version: int = 1
    threshold: float
    detector_ids: list[str] = []
    n_rows: int
    n_labels: int
    coverage: float | None  # scored labelled videos / labels
    counts: RowCounts
    abstained: list[ExcludedRow] = []
    errored: list[ExcludedRow] = []
    unlabeled: list[str] = []
    missing: list[str] = []
    invalid: list[InvalidRow] = []
    duplicates: list[str] = []
    video: LevelResult
    window: LevelResult | None = None
    videos: list[VideoScore] = []
    notes: list[str] = []
    localisation: LocalisationReport | None = None


def _valid_score(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and 0.0 <= value <= 1.0)


def _row_problem(row: Any) -> str | None:
    """Why a row cannot be used at all (None if it can)."""
    if not isinstance(row, Mapping):
        return f"not a mapping ({type(row).__name__})"
    if not isinstance(row.get("media_path"), str) or not row["media_path"]:
        return "missing media_path"
    if row.get("status") not in ("ok", "abstained", "error"):
        return f"unknown status {row.get('status')!r}"
    if row["status"] == "ok" and not _valid_score(row.get("score")):
        return f"ok row without a finite score in [0, 1] (score={row.get('score')!r})"
    return None


def _thin(*arrays: np.ndarray) -> list[list[float]]:
    n = arrays[0].size
    idx = np.unique(np.linspace(0, n - 1, _CURVE_POINTS).round().astype(int)) if n > _CURVE_POINTS else slice(None)
    return [a[idx].astype(float).tolist() for a in arrays]


def _level(y: list[int], s: list[float], threshold: float) -> LevelResult:
    summary = MetricSummary.model_validate(metrics.summarize(y, s, threshold))
    curves = Curves()
    if summary.n_real and summary.n_fake:
        fpr, tpr, _ = metrics.roc_curve(y, s)
        precision, recall, _ = metrics.precision_recall_curve(y, s, drop_intermediate=True)
        curves.fpr, curves.tpr = _thin(fpr, tpr)
        curves.recall, curves.precision = _thin(recall, precision)
    return LevelResult(summary=summary, curves=curves)


def evaluate_rows(rows: Iterable[Mapping[str, Any]], labels: Mapping[str, int], *,
                  threshold: float = 0.5, window_level: bool = True) -> EvaluationReport:
    """Join result rows to labels by resolved ``media_path`` and compute metrics.

    Video level uses ``score`` of ok rows; window level (if ``window_level``
    and any ok row has windows) pools every ``windows[*].score`` with its
    video's label, so videos with more windows weigh more. The first row for
    a path wins; later ones are listed as duplicates. Evaluate one
    detector's rows at a time.
    """
    labels = {_key(k): int(v) for k, v in labels.items()}
    rep: dict[str, Any] = {k: [] for k in ("abstained", "errored", "unlabeled", "invalid", "duplicates", "videos",
                                          "detector_ids")}
    seen: set[str] = set()
    y_win: list[int] = []
    s_win: list[float] = []
    bad_windows = n_rows = 0
    for index, row in enumerate(rows):
        n_rows += 1
        row = row.model_dump() if hasattr(row, "model_dump") else row
        reason = _row_problem(row)
        if reason is not None:
            path = row.get("media_path") if isinstance(row, Mapping) else None
            rep["invalid"].append(InvalidRow(index=index, reason=reason,
                                             media_path=path if isinstance(path, str) else None))
            continue
        key, status = _key(row["media_path"]), row["status"]
        if isinstance(row.get("detector_id"), str) and row["detector_id"] not in rep["detector_ids"]:
            rep["detector_ids"].append(row["detector_id"])
        if key in seen:
            rep["duplicates"].append(key)
            continue
        seen.add(key)
        if key not in labels:
            rep["unlabeled"].append(key)
        elif status == "abstained":
            rep["abstained"].append(ExcludedRow(media_path=key, code="abstained", message=row.get("abstain_reason")))
        elif status == "error":
            err = row["error"] if isinstance(row.get("error"), Mapping) else {}
            rep["errored"].append(ExcludedRow(media_path=key, code=err.get("code"), message=err.get("message")))
        else:
            label, score = labels[key], float(row["score"])
            wins = row.get("windows")
            raw = [w.get("score") if isinstance(w, Mapping) else None for w in (wins if isinstance(wins, list) else [])]
            good = [float(v) for v in raw if _valid_score(v)]
            bad_windows, n_win = bad_windows + len(raw) - len(good), len(good)
            y_win += [label] * n_win
            s_win += good
            rep["videos"].append(VideoScore(media_path=key, label=label, score=score,
                                            predicted=int(score >= threshold), n_windows=n_win))
    missing = sorted(set(labels) - seen)
    counts = RowCounts(ok=len(rep["videos"]), abstained=len(rep["abstained"]), error=len(rep["errored"]),
                       unlabeled=len(rep["unlabeled"]), invalid=len(rep["invalid"]),
                       duplicate=len(rep["duplicates"]), missing=len(missing))
    y = [v.label for v in rep["videos"]]
    s = [v.score for v in rep["videos"]]
    notes: list[str] = []
    if bad_windows:
        notes.append(f"{bad_windows} window(s) without a finite score in [0, 1] were skipped")
    if len(rep["detector_ids"]) > 1:
        notes.append(f"rows from several detectors ({', '.join(rep['detector_ids'])}); evaluate one at a time")
    if counts.abstained or counts.error or counts.missing:
        notes.append("video metrics cover scored videos only; abstained, errored and missing "
                     "videos are listed, not counted as right or wrong")
    window = None
    if window_level and y_win:
        window = _level(y_win, s_win, threshold)
        window.summary.notes.append("windows are pooled across videos and are not independent samples")
    elif window_level:
        notes.append("no window scores in the rows: window-level metrics skipped")
    return EvaluationReport(
        threshold=threshold, n_rows=n_rows, n_labels=len(labels),
        coverage=counts.ok / len(labels) if labels else None, counts=counts,
        missing=missing, video=_level(y, s, threshold), window=window, notes=notes, **rep)


def row_for(line: dict[str, Any], detector: str | None = None) -> dict[str, Any]:
    """The row :func:`evaluate_rows` scores for one scan line.

    ``detector``: a detector id, or ``"combined"``; by default the only detector's
    row, or the combined verdict when the line has several detectors.
    """
    results = line.get("results", [])
    if (detector is None and len(results) == 1) or detector not in (None, "combined"):
        want = results[0]["detector_id"] if detector is None else detector
        for r in results:
            if r["detector_id"].upper() == want.upper():
                return r
        return {"media_path": line["media_path"], "status": "error", "detector_id": want,
                "error": {"code": "not_run", "message": f"{want} has no row for this file"}}
    comb = line["combined"]
    row = {"media_path": line["media_path"], "detector_id": f"combined:{comb['method']}", "windows": []}
    if comb["status"] == "ok":
        return {**row, "status": "ok", "score": comb["score"]}
    errors = [r for r in results if r.get("status") == "error"]
    if errors and len(errors) == len(results):
        return {**row, "status": "error", "error": errors[0]["error"]}
    return {**row, "status": "abstained", "abstain_reason": comb.get("reason")}


def _localise(rows: list[dict[str, Any]], segments: str | os.PathLike) -> LocalisationReport:
    """AP/AR of the rows' ``segments`` against the ground-truth segments file."""
    from .localisation import load_truth, localisation_metrics, match_truth_to_paths, proposals_from_segments

    truth = load_truth(segments)
    by_path = {_key(r["media_path"]): r for r in rows if isinstance(r.get("media_path"), str)}
    if not any("segments" in r for r in by_path.values()):
        raise InvalidOptionsError(
            "no result row carries segments, so there is nothing to localise",
            hint="localisation needs a detector's own rows (pass --detector ID with several models) "
                 "from a version that reports segments")
    matched = match_truth_to_paths(list(truth), list(by_path), base=Path(segments).expanduser().parent)
    proposals = {name: proposals_from_segments(by_path[path].get("segments")) if by_path[path].get("status") == "ok" else []
                 for name, path in matched.items()}
    report = localisation_metrics(truth, proposals)
    unscored = sorted(name for name, path in matched.items() if by_path[path].get("status") != "ok")
    if unscored:
        report.notes.append(f"{len(unscored)} file(s) with ground truth abstained or failed: no proposals "
                            f"({', '.join(unscored[:5])}{' ...' if len(unscored) > 5 else ''})")
    if report.missing:
        report.notes.append(f"{len(report.missing)} file(s) of the segments file have no result row: no proposals")
    return report


def evaluate(labels_source: str | os.PathLike, *, results: str | os.PathLike | None = None,
             inputs: Iterable[str | os.PathLike] | None = None, models: Sequence[ModelSpec] | None = None,
             output_dir: str | os.PathLike | None = None, threshold: float = 0.5, detector: str | None = None,
             segments: str | os.PathLike | None = None, **scan_kwargs: Any) -> EvaluationReport:
    """Score a scan against labels; with ``output_dir``, write ``report.json``/``.md`` and SVG plots there.

    Without ``results``, the labelled files (or ``inputs``) are first scanned into
    ``output_dir/results.jsonl`` (resumable, so a rerun only evaluates again), or, without
    ``output_dir``, into a temporary folder that is removed afterwards. ``segments``: a JSON
    file of ground-truth fake segments per file, for AP/AR (:mod:`.localisation`).
    """
    import tempfile

    labels = load_labels(labels_source)
    models = list(models or ["LIPFD-V1"])
    if segments is not None and results is None and len(models) > 1 and detector in (None, "combined"):
        raise InvalidOptionsError("the combined verdict of several models has no segments to localise",
                                  hint="pass --detector ID to localise with one detector's segments")
    with tempfile.TemporaryDirectory(prefix="forensics-evaluate-") as scratch:
        if results is None:
            results = Path(output_dir if output_dir is not None else scratch) / "results.jsonl"
            summary = scan(list(inputs) if inputs is not None else sorted(labels), models, results, **scan_kwargs)
            if summary.interrupted:
                raise KeyboardInterrupt  # do not report on a half-done scan
        lines = read_lines(results)
    if detector not in (None, "combined"):
        try:
            detector = _card_id(detector)  # an alias names the same rows
        except ForensicsError:
            pass
    if detector not in (None, "combined") and not any(
            r["detector_id"].upper() == detector.upper() for line in lines for r in line.get("results", [])):
        raise InvalidOptionsError(f"no rows from detector {detector!r} in {results}")
    rows = [row_for(line, detector) for line in lines]
    report = evaluate_rows(rows, labels, threshold=threshold)
    if segments is not None:
        report.localisation = _localise(rows, segments)
    if output_dir is not None:
        write_report(report, output_dir)
    return report

"""Temporal localisation metrics: AP at IoU thresholds and AR at N proposals, as AV-Deepfake1M scores them.

Why these exact rules: published localisation results on AV-Deepfake1M come from the
official ``avdeepfake1m`` evaluator (``ap_ar_1d``), so numbers are comparable only if
they are computed its way, quirks included. This module reproduces it (a test compares
the two on many generated cases) and reports the textbook AP beside it:

* **IoU** of two segments is intersection / union in seconds; a proposal hits a
  ground-truth segment only when the IoU is *strictly above* the threshold.
* **Matching (AP)**: per file, each ground-truth segment in turn takes the first
  proposal, in score order, that hits it and is not taken yet.
* **AP**: all files' proposals ranked by score (a stable sort, so ties keep file
  order), precision and recall after each, precision made non-increasing from the
  right, and the area summed over recall steps. The official evaluator leaves out
  the *first* recall step (from recall 0 to the first hit's recall): one perfect
  proposal scores 0, and every ranking loses ``r1 * max precision``.
  :func:`localisation_metrics` gives that value under ``ap`` (comparable with published
  numbers) and the full area under ``ap_textbook``.
* **AR@N**: per file, the first N proposals (highest scores); a ground-truth segment
  is recalled when any of them hits it (no one-to-one matching); recall is pooled over
  files (sum of hits / sum of segments) and averaged over IoU 0.5, 0.55, ..., 0.95.
  The official evaluator cannot read a file without proposals (its JSON reader stops);
  here such a file's segments count as missed, and :attr:`LocalisationReport.notes` says so.

Arithmetic is float32 as in the official evaluator (segment times, IoUs and scores), so
ties and threshold comparisons come out the same; sums are float64 and may differ from
the official float32 sums in the 7th significant digit.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from ..errors import InvalidOptionsError

AP_IOU_THRESHOLDS = (0.5, 0.75, 0.9, 0.95)
AR_PROPOSALS = (50, 30, 20, 10, 5)
AR_IOU_THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)

Segments = Sequence[Sequence[float]]  # [[start_s, end_s], ...]
Proposals = Sequence[Sequence[float]]  # [[score, start_s, end_s], ...] (the official proposal rows)


class LocalisationReport(BaseModel):
    """AP/AR keyed by threshold and proposal count as strings (JSON keys), None where undefined."""

    n_files: int
    n_segments: int = Field(description="ground-truth fake segments")
    n_proposals: int = Field(description="proposals (result segments) over the files with ground truth")
    ap: dict[str, float | None]
    ar: dict[str, float | None]
    ap_textbook: dict[str, float | None] = Field(description="AP including the first recall step")
    missing: list[str] = Field(default_factory=list, description="ground-truth files that had no result row")
    notes: list[str] = Field(default_factory=list)


def _key(value: float | int) -> str:
    return f"{value:g}"


def _check_segment(seg: Any, where: str, *, width: int) -> list[float]:
    if not isinstance(seg, (list, tuple)) or len(seg) != width:
        raise InvalidOptionsError(f"{where}: {seg!r} is not a list of {width} numbers")
    values = [float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan for v in seg]
    if not all(math.isfinite(v) for v in values):
        raise InvalidOptionsError(f"{where}: {seg!r} holds a value that is not a finite number")
    return values


def load_truth(source: str | os.PathLike[str]) -> dict[str, list[list[float]]]:
    """Ground truth from JSON ``{file name: [[start_s, end_s], ...]}`` (an empty list: a real file)."""
    path = Path(source).expanduser()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidOptionsError(f"cannot read the segments file {str(path)!r}: {exc.strerror or exc}",
                                  hint="pass a JSON file {file name: [[start_s, end_s], ...]}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidOptionsError(f"{path} is not valid JSON: {exc}",
                                  hint="the segments file maps file names to [[start_s, end_s], ...]") from None
    if not isinstance(data, dict) or not data:
        raise InvalidOptionsError(f"{path}: expected a non-empty JSON object {{file name: [[start_s, end_s], ...]}}")
    truth: dict[str, list[list[float]]] = {}
    for name, segs in data.items():
        if not isinstance(segs, list):
            raise InvalidOptionsError(f"{path}: the value for {name!r} is not a list of [start_s, end_s]")
        rows = [_check_segment(s, f"{path}: {name!r}", width=2) for s in segs]
        bad = [r for r in rows if r[1] < r[0]]
        if bad:
            raise InvalidOptionsError(f"{path}: {name!r} has a segment that ends before it starts: {bad[0]}")
        truth[name] = rows
    return truth


def proposals_from_segments(segments: Any) -> list[list[float]]:
    """A result's ``segments`` (``[[start_s, end_s, score], ...]``) as official proposal rows ``[score, start, end]``."""
    if not isinstance(segments, list):
        return []
    out = []
    for seg in segments:
        start, end, score = _check_segment(seg, "result segment", width=3)
        out.append([score, start, end])
    return out


def _ranked(proposals: Proposals) -> np.ndarray:
    """Proposal rows as float32 (n, 3), highest score first (stable: ties keep their order)."""
    rows = np.asarray(proposals, dtype=np.float32).reshape(-1, 3)
    return rows[np.argsort(-rows[:, 0], kind="stable")]


def _iou(proposals: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """IoU matrix (proposals x segments) in float32; an empty union gives NaN, which never hits."""
    ps, pe = proposals[:, 1:2], proposals[:, 2:3]
    ts, te = truth[None, :, 0], truth[None, :, 1]
    inter = np.maximum(np.minimum(pe, te) - np.maximum(ps, ts), np.float32(0))
    union = np.maximum(pe, te) - np.minimum(ps, ts)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (inter / union).astype(np.float32)


def _true_positives(iou: np.ndarray, threshold: np.float32) -> np.ndarray:
    """Which proposals (in rank order) are hits: each segment takes the first free proposal above the threshold."""
    hit = iou > threshold
    taken = np.zeros(iou.shape[0], dtype=bool)
    for j in range(iou.shape[1]):
        free = np.flatnonzero(hit[:, j] & ~taken)
        if free.size:
            taken[free[0]] = True
    return taken


def _ap(is_tp: np.ndarray, n_segments: int) -> tuple[float, float]:
    """(official AP, textbook AP) of hits ranked by score."""
    if is_tp.size == 0:
        return 0.0, 0.0
    cum = np.cumsum(is_tp, dtype=np.float32)
    precision = cum / np.arange(1, cum.size + 1, dtype=np.float32)
    recall = cum / np.float32(n_segments)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]  # best precision at this recall or beyond
    steps = np.diff(recall, prepend=np.float32(0)).astype(np.float64)
    areas = steps * envelope.astype(np.float64)
    return float(areas[1:].sum()), float(areas.sum())


def _hits_at(iou: np.ndarray, n: int, threshold: np.float32) -> int:
    """Segments hit by any of the first ``n`` proposals."""
    if n == 0 or iou.shape[1] == 0:
        return 0
    return int(np.count_nonzero(np.fmax.reduce(iou[:n], axis=0) > threshold))


def localisation_metrics(truth: Mapping[str, Segments], proposals: Mapping[str, Proposals], *,
                         ap_iou: Sequence[float] = AP_IOU_THRESHOLDS, ar_n: Sequence[int] = AR_PROPOSALS,
                         ar_iou: Sequence[float] = AR_IOU_THRESHOLDS) -> LocalisationReport:
    """AP and AR over the files of ``truth``; a file absent from ``proposals`` has none (and is listed)."""
    files = list(truth)
    gt = {f: np.asarray(truth[f], dtype=np.float32).reshape(-1, 2) for f in files}
    props = {f: _ranked(proposals.get(f, [])) for f in files}
    ious = {f: _iou(props[f], gt[f]) for f in files}
    n_segments = sum(len(g) for g in gt.values())
    n_proposals = sum(len(p) for p in props.values())
    notes: list[str] = []

    ap: dict[str, float | None] = {}
    ap_textbook: dict[str, float | None] = {}
    scores = np.concatenate([props[f][:, 0] for f in files]) if files else np.zeros(0, np.float32)
    order = np.argsort(-scores, kind="stable")
    for t in ap_iou:
        if n_segments == 0:
            ap[_key(t)] = ap_textbook[_key(t)] = None
            continue
        is_tp = np.concatenate([_true_positives(ious[f], np.float32(t)) for f in files])[order]
        ap[_key(t)], ap_textbook[_key(t)] = _ap(is_tp, n_segments)
    if n_segments == 0:
        notes.append("no ground-truth segments: AP is undefined")

    ar: dict[str, float | None] = {}
    for n in ar_n:
        recalls = []
        for t in ar_iou:
            hits = sum(_hits_at(ious[f], min(n, len(props[f])), np.float32(t)) for f in files)
            recalls.append(hits / n_segments if n_segments else 0.0)
        ar[_key(n)] = float(np.mean(recalls)) if recalls else None
    unproposed = sum(len(gt[f]) for f in files if not len(props[f]))
    if unproposed:
        notes.append(f"{unproposed} ground-truth segment(s) are in files without any proposal: counted as missed "
                     "(the official evaluator cannot read a file without proposals)")
    missing = [f for f in files if f not in proposals]
    return LocalisationReport(n_files=len(files), n_segments=n_segments, n_proposals=n_proposals, ap=ap, ar=ar,
                              ap_textbook=ap_textbook, missing=missing, notes=notes)


def match_truth_to_paths(truth_names: Sequence[str], paths: Sequence[str], base: str | os.PathLike[str] | None = None
                         ) -> dict[str, str]:
    """``{truth name: media path}``: an absolute name is the path itself; a relative one matches the
    path whose trailing components equal it (``"id01/x.mp4"`` matches ``/data/fake/id01/x.mp4``).

    A relative name that fits several paths is an error (use more of the path); one that fits none is
    left out of the mapping (the file has no result).
    """
    by_parts: dict[tuple[str, ...], list[str]] = {}
    for p in paths:
        parts = Path(p).parts
        for k in range(1, len(parts) + 1):
            by_parts.setdefault(parts[-k:], []).append(p)
    out: dict[str, str] = {}
    for name in truth_names:
        candidate = Path(name).expanduser()
        if candidate.is_absolute():
            resolved = str(candidate.resolve())
            if resolved in paths:
                out[name] = resolved
            continue
        if base is not None and str((Path(base) / candidate).resolve()) in paths:
            out[name] = str((Path(base) / candidate).resolve())
            continue
        found = by_parts.get(Path(os.path.normpath(name)).parts, [])
        if len(found) > 1:
            raise InvalidOptionsError(f"the segments file's {name!r} fits several files: {found[0]}, {found[1]} ...",
                                      hint="name files by more of their path (or an absolute path) in the segments file")
        if found:
            out[name] = found[0]
    return out

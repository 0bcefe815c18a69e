"""Binary detection metrics, computed from scores, in pure numpy.

Why this module exists: the released LipFD validation script reports FPR and
FNR swapped (it unpacks scikit-learn's ``confusion_matrix`` as ``tp, fn, fp,
tn`` instead of ``tn, fp, fn, tp``) and computes "AP" from thresholded 0/1
predictions, which measures one operating point rather than the ranking. Here
every ranking metric (ROC AUC, AP, EER) is computed from the continuous scores
and every threshold metric follows one explicit convention:

* label 1 = fake = positive, label 0 = real = negative;
* a video is *predicted fake* when ``score >= threshold``;
* FPR = FP / (FP + TN): real videos called fake;
  FNR = FN / (FN + TP): fakes that were missed.

Curves reproduce scikit-learn point for point (same sort, same tie handling:
tied scores form one threshold, so a tie never depends on input order) so the
test-suite can compare against it; scikit-learn is not a runtime dependency.

Degenerate inputs (empty, or a single class) never raise and never produce NaN
in scalar results: a metric that is undefined is ``None`` and
:func:`summarize` says why in its ``notes``. Curve functions, which return
arrays, follow scikit-learn and use NaN (ROC) or 1.0 (PR recall) for the
undefined axis. Malformed inputs (labels other than 0/1, non-finite scores,
length mismatch) raise ``ValueError``: those are bugs, not degenerate data.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "roc_curve", "roc_auc", "precision_recall_curve", "average_precision",
    "confusion_at", "accuracy", "balanced_accuracy", "fpr_fnr_at",
    "equal_error_threshold", "summarize",
]


def _check(y_true: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert inputs to (int labels, float scores), both 1-D."""
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=float)
    if y.ndim != 1 or s.ndim != 1:
        raise ValueError(f"y_true and scores must be 1-D, got shapes {y.shape} and {s.shape}")
    if y.shape != s.shape:
        raise ValueError(f"y_true has {y.size} items but scores has {s.size}")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must contain only 0 (real) and 1 (fake)")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite (no NaN or inf)")
    return y.astype(np.int64), s


def _clf_curve(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False/true positive counts at each distinct score, highest score first.

    Entry i counts the samples with ``score >= thresholds[i]``; tied scores
    are one threshold (this is scikit-learn's ``_binary_clf_curve``).
    """
    if y.size == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    order = np.argsort(s, kind="mergesort")[::-1]
    s, y = s[order], y[order]
    idx = np.r_[np.where(np.diff(s))[0], y.size - 1]
    tps = np.cumsum(y, dtype=float)[idx]
    fps = 1.0 + idx - tps
    return fps, tps, s[idx]


def roc_curve(y_true: Any, scores: Any, *, drop_intermediate: bool = True
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve ``(fpr, tpr, thresholds)``, identical to ``sklearn.metrics.roc_curve``.

    ``thresholds`` is decreasing and starts at ``inf`` so the curve starts at
    (0, 0). With ``drop_intermediate`` collinear points are removed (AUC is
    unchanged). With no real (no fake) videos ``fpr`` (``tpr``) is all NaN.
    """
    y, s = _check(y_true, scores)
    fps, tps, thr = _clf_curve(y, s)
    if drop_intermediate and fps.size > 2:
        keep = np.where(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0]
        fps, tps, thr = fps[keep], tps[keep], thr[keep]
    fps, tps, thr = np.r_[0.0, fps], np.r_[0.0, tps], np.r_[np.inf, thr]
    fpr = fps / fps[-1] if fps[-1] > 0 else np.full(fps.shape, np.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else np.full(tps.shape, np.nan)
    return fpr, tpr, thr


def roc_auc(y_true: Any, scores: Any) -> float | None:
    """Area under the ROC curve (trapezoidal; ties count one half). None unless both classes exist."""
    y, s = _check(y_true, scores)
    if not (y == 1).any() or not (y == 0).any():
        return None
    fpr, tpr, _ = roc_curve(y, s)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def precision_recall_curve(y_true: Any, scores: Any, *, drop_intermediate: bool = False
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(precision, recall, thresholds)``, identical to ``sklearn.metrics.precision_recall_curve``.

    Recall is decreasing and ends with the point (recall 0, precision 1);
    ``thresholds`` is increasing and one shorter. With no fake videos recall
    is set to 1 everywhere (as scikit-learn does).
    """
    y, s = _check(y_true, scores)
    fps, tps, thr = _clf_curve(y, s)
    if drop_intermediate and fps.size > 2:
        keep = np.where(np.r_[True, np.logical_or(np.diff(tps[:-1]), np.diff(tps[1:])), True])[0]
        fps, tps, thr = fps[keep], tps[keep], thr[keep]
    ps = tps + fps
    precision = np.divide(tps, ps, out=np.zeros_like(tps), where=ps != 0)
    recall = tps / tps[-1] if tps.size and tps[-1] > 0 else np.ones_like(tps)
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thr[::-1]


def average_precision(y_true: Any, scores: Any) -> float | None:
    """Step-wise AP from scores: sum over thresholds of (R_n - R_{n-1}) * P_n.

    This is scikit-learn's ``average_precision_score`` (no interpolation).
    None when there is no fake video (recall is undefined); with only fakes
    it is trivially 1.0.
    """
    y, s = _check(y_true, scores)
    if not (y == 1).any():
        return None
    precision, recall, _ = precision_recall_curve(y, s)
    return float(max(0.0, -np.sum(np.diff(recall) * precision[:-1])))


def confusion_at(y_true: Any, scores: Any, threshold: float) -> dict[str, int]:
    """Counts ``tp, fp, tn, fn`` with positive = fake and predicted fake iff ``score >= threshold``."""
    y, s = _check(y_true, scores)
    pred = s >= threshold
    fake = y == 1
    return {"tp": int(np.sum(pred & fake)), "fp": int(np.sum(pred & ~fake)),
            "tn": int(np.sum(~pred & ~fake)), "fn": int(np.sum(~pred & fake))}


def _ratio(num: int, den: int) -> float | None:
    return float(num / den) if den else None


def accuracy(y_true: Any, scores: Any, threshold: float = 0.5) -> float | None:
    """Fraction of videos classified correctly at ``threshold``; None if empty."""
    c = confusion_at(y_true, scores, threshold)
    return _ratio(c["tp"] + c["tn"], sum(c.values()))


def balanced_accuracy(y_true: Any, scores: Any, threshold: float = 0.5) -> float | None:
    """Mean of per-class recall (TPR and TNR) at ``threshold``.

    Unlike accuracy it is not inflated by class imbalance. As in
    scikit-learn, a class absent from ``y_true`` is left out of the mean
    (so with one class it equals accuracy); None if empty.
    """
    c = confusion_at(y_true, scores, threshold)
    recalls = [r for r in (_ratio(c["tp"], c["tp"] + c["fn"]), _ratio(c["tn"], c["tn"] + c["fp"]))
               if r is not None]
    return float(np.mean(recalls)) if recalls else None


def fpr_fnr_at(y_true: Any, scores: Any, threshold: float) -> tuple[float | None, float | None]:
    """``(FPR, FNR)`` at ``threshold``: FPR = FP/(FP+TN) (reals called fake), FNR = FN/(FN+TP) (fakes missed).

    FPR is None without real videos, FNR is None without fake videos.
    """
    c = confusion_at(y_true, scores, threshold)
    return _ratio(c["fp"], c["fp"] + c["tn"]), _ratio(c["fn"], c["fn"] + c["tp"])


def equal_error_threshold(y_true: Any, scores: Any) -> tuple[float | None, float | None]:
    """``(threshold, eer)``: the equal error rate, where FPR equals FNR.

    Interpolation: walk the full ROC curve (every distinct score is a
    vertex), find the segment where ``FPR - FNR`` changes sign, and
    interpolate linearly along it; ``eer`` is the FPR (= FNR) at the crossing.
    The piecewise-linear ROC is achievable by randomising between the two
    neighbouring thresholds, so this is the usual, order-independent EER; it
    is exact when a vertex has FPR == FNR. ``threshold`` is not interpolated
    (scores are not linear along a segment): it is the score of the segment
    end whose ``|FPR - FNR|`` is smaller, ties going to the lower score, so it
    is always a real, finite score usable with ``score >= threshold``. Both
    are None unless both classes are present.
    """
    y, s = _check(y_true, scores)
    if not (y == 1).any() or not (y == 0).any():
        return None, None
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    d = fpr - (1.0 - tpr)  # strictly increasing from -1 (at inf) to +1
    k = int(np.argmax(d >= 0))  # first vertex at or past the crossing; k >= 1
    if d[k] == 0:
        return float(thr[k]), float(fpr[k])
    lo, hi = k - 1, k
    alpha = -d[lo] / (d[hi] - d[lo])
    eer = fpr[lo] + alpha * (fpr[hi] - fpr[lo])
    best = lo if abs(d[lo]) < abs(d[hi]) and np.isfinite(thr[lo]) else hi
    return float(thr[best]), float(eer)


def summarize(y_true: Any, scores: Any, threshold: float = 0.5) -> dict[str, Any]:
    """All metrics for one set of scores as a JSON-ready dict (plain floats/ints/None).

    Keys: n, n_real, n_fake, threshold, tp, fp, tn, fn, acc, balanced_acc,
    ap, roc_auc, fpr, fnr (at ``threshold``), eer, eer_threshold,
    fpr_at_eer_threshold, fnr_at_eer_threshold, notes. Ranking metrics
    (ap, roc_auc, eer) need both classes and are None otherwise; the reason
    is appended to ``notes``.
    """
    y, s = _check(y_true, scores)
    n_fake = int(np.sum(y == 1))
    n_real = int(y.size - n_fake)
    notes: list[str] = []
    out: dict[str, Any] = {"n": int(y.size), "n_real": n_real, "n_fake": n_fake,
                           "threshold": float(threshold)}
    out.update(confusion_at(y, s, threshold))
    out["acc"] = accuracy(y, s, threshold)
    out["balanced_acc"] = balanced_accuracy(y, s, threshold)
    out["fpr"], out["fnr"] = fpr_fnr_at(y, s, threshold)
    both = n_real > 0 and n_fake > 0
    out["ap"] = average_precision(y, s) if both else None
    out["roc_auc"] = roc_auc(y, s)
    out["eer_threshold"], out["eer"] = equal_error_threshold(y, s)
    out["fpr_at_eer_threshold"] = out["fnr_at_eer_threshold"] = None
    if out["eer_threshold"] is not None:
        out["fpr_at_eer_threshold"], out["fnr_at_eer_threshold"] = fpr_fnr_at(y, s, out["eer_threshold"])
    if y.size == 0:
        notes.append("no scored samples: every metric is undefined")
    elif not both:
        missing = "real (label 0)" if n_real == 0 else "fake (label 1)"
        notes.append(f"no {missing} samples: ap, roc_auc and eer are undefined")
        notes.append("fpr is undefined without real samples" if n_real == 0
                     else "fnr is undefined without fake samples")
        notes.append("balanced_acc averages over the one class present (equals acc)")
    out["notes"] = notes
    return out

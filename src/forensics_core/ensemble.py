"""Several detectors on the same files, each loaded once.

Per file the media is probed once. A detector whose modalities the file lacks
(LipFD on a silent video or a photo) is ``abstained`` with its reason and code while
the others run (the rule: :mod:`forensics_core.modalities`); a detector that fails
on the file gives an ``error`` row; neither stops the others nor the next file.
The combined verdict uses ``ok`` rows only: the numeric mean/max of their scores,
and the level of evidence they give with the reasons (:mod:`forensics_core.evidence`).
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .detector import Detector, DetectorCard
from .errors import ForensicsError, MediaProcessingError
from .evidence import EvidenceLevel, Vote, summary, weigh
from .logs import bound_contextvars, get_logger
from .modalities import abstention
from .results import DEFAULT_THRESHOLD, DetectionResult, Label, label_for

log = get_logger("forensics.ensemble")

Combine = Literal["mean", "max", "weighted"]
#: media error codes that mean "this detector cannot judge this file" rather than "the file is broken"
ABSTAIN_CODES = {"no_audio_track": "no audio track", "no_video_stream": "no video stream"}


class CombinedVerdict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["ok", "abstained"]
    method: Combine
    score: float | None = None
    prediction: Label | None = None
    threshold: float = DEFAULT_THRESHOLD
    detectors_used: list[str] = Field(default_factory=list)
    reason: str | None = None
    evidence: EvidenceLevel | None = Field(default=None, description="substantial, uncertain or little evidence of manipulation")
    summary: str | None = Field(default=None, description="the evidence level in words")
    reasons: list[str] = Field(default_factory=list, description="what each detector said, in words")
    votes: list[Vote] = Field(default_factory=list, description="each detector's band, or why it did not vote")


class EnsembleReport(BaseModel):
    """One JSON document per file: every detector's row and the combined verdict."""

    model_config = ConfigDict(extra="forbid")
    media_path: str
    results: list[DetectionResult]
    combined: CombinedVerdict
    media: dict[str, Any] | None = Field(default=None, description="the probe of the file: the time axis (duration, fps, "
                                         "frame_count) that every detector's windows share")

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def combine(rows: Iterable[DetectionResult], method: Combine = "mean", weights: dict[str, float] | None = None,
            threshold: float = DEFAULT_THRESHOLD, cards: dict[str, DetectorCard] | None = None) -> CombinedVerdict:
    """The combined verdict of ``rows``: a score by ``method`` and the evidence level by the cards' bands."""
    rows = list(rows)
    level, votes = weigh(rows, cards)
    words = {"evidence": level, "summary": summary(level), "reasons": [v.reason for v in votes], "votes": votes}
    ok = [r for r in rows if r.status == "ok" and r.score is not None]
    if not ok:
        return CombinedVerdict(status="abstained", method=method, threshold=threshold, reason="no detector gave a score", **words)
    scores = [r.score for r in ok]
    if method == "mean":
        score = sum(scores) / len(scores)
    elif method == "max":
        score = max(scores)
    elif method == "weighted":
        w = [(weights or {}).get(r.detector_id, 1.0) for r in ok]
        if sum(w) <= 0:
            raise ValueError("ensemble weights of the ok detectors sum to zero")
        score = sum(wi * s for wi, s in zip(w, scores)) / sum(w)
    else:
        raise ValueError(f"unknown combine method {method!r}")
    return CombinedVerdict(status="ok", method=method, score=score, prediction=label_for(score, threshold),
                           threshold=threshold, detectors_used=[r.detector_id for r in ok], **words)


def run_one(detector: Detector, path: str | os.PathLike, options: dict[str, Any] | None = None,
            *, modalities: frozenset[str] | None = None, abstain: bool = False) -> DetectionResult:
    """One detector on one file, as a row: never raises for a bad file.

    With ``abstain``, a file lacking one of the detector's modalities gives ``abstained``.
    """
    card = detector.card
    common = {"detector_id": card.id, "detector_version": card.version, "media_path": os.fspath(path)}
    if abstain and modalities is not None:
        cannot = abstention(card.modalities, modalities)
        if cannot is not None:
            return DetectionResult.abstained(cannot[1], code=cannot[0], **common)
    started = time.perf_counter()
    with bound_contextvars(detector_id=card.id, media_path=os.fspath(path)):
        try:
            return detector.analyze(path, **(options or {}))
        except MediaProcessingError as exc:
            if abstain and exc.code in ABSTAIN_CODES:
                return DetectionResult.abstained(ABSTAIN_CODES[exc.code], code=exc.code,
                                                 processing_time=time.perf_counter() - started, **common)
            log.warning("media error", code=exc.code, error=exc.message)
            return DetectionResult.failed(exc, processing_time=time.perf_counter() - started, **common)
        except ForensicsError as exc:
            log.warning("detector error", code=exc.code, error=exc.message)
            return DetectionResult.failed(exc, processing_time=time.perf_counter() - started, **common)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the others
            log.error("unexpected failure", error=repr(exc), exc_info=True)
            return DetectionResult.failed(exc, processing_time=time.perf_counter() - started, **common)


def run_ensemble(detectors: list[Detector], paths: Iterable[str | os.PathLike], *,
                 options: dict[str, dict[str, Any]] | None = None, method: Combine = "mean",
                 weights: dict[str, float] | None = None, threshold: float = DEFAULT_THRESHOLD,
                 on_row: Callable[[DetectionResult], None] | None = None) -> Iterator[EnsembleReport]:
    """Yield one :class:`EnsembleReport` per path; the detectors must already be loaded.

    ``on_row`` (optional) is called after each detector's row, e.g. to report progress.
    """
    from .media import probe
    from .media.faces import face_cache

    options = options or {}
    cards = {d.card.id: d.card for d in detectors}
    for path in paths:
        try:
            info = probe(path)
            modalities = info.modalities
        except MediaProcessingError as exc:
            rows = [DetectionResult.failed(exc, detector_id=d.card.id, detector_version=d.card.version, media_path=os.fspath(path)) for d in detectors]
            combined = combine(rows, method, weights, threshold, cards).model_copy(update={"reason": f"{exc.code}: {exc.message}"})
            yield EnsembleReport(media_path=os.fspath(path), results=rows, combined=combined)
            continue
        with face_cache():  # one file's faces are found once and shared by every detector
            rows = []
            for d in detectors:
                rows.append(run_one(d, path, options.get(d.card.id), modalities=modalities, abstain=True))
                if on_row is not None:
                    on_row(rows[-1])
        yield EnsembleReport(media_path=os.fspath(path), results=rows, combined=combine(rows, method, weights, threshold, cards),
                             media={k: v for k, v in info.to_dict().items() if k != "path"})  # media_path names the file

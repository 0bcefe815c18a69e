"""Weighing several detectors' results into a level of evidence, with the reasons in words.

A mean of scores hides what an analyst needs: detectors look for different traces
(LipFD for lips that do not follow the speech, GenD for a forged face), so a high
score from one is not cancelled by a low score from another that cannot see that
kind of manipulation. Each card's score bands (:class:`~forensics_core.detector.ScoreBands`)
put a score in ``low``, ``uncertain`` or ``high``; the level is

- ``substantial`` evidence of manipulation when any detector's score is high;
- ``uncertain`` when none is high and at least one is uncertain;
- ``little`` evidence when every detector that gave a score is low.

Abstentions and errors never vote; they are listed among the reasons so that a
reader sees what was not checked.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict

from .detector import DEFAULT_SCORE_BANDS, DetectorCard, ScoreBands
from .results import DetectionResult

EvidenceLevel = Literal["substantial", "uncertain", "little"]
Band = Literal["low", "uncertain", "high"]


class Vote(BaseModel):
    """One detector's part in the verdict: its band, or why it did not vote."""

    model_config = ConfigDict(extra="forbid")
    detector_id: str
    status: str
    score: float | None = None
    band: Band | None = None
    low: float
    high: float
    reason: str


def _strongest_window(row: DetectionResult) -> str:
    """Where the highest-scoring window is, in seconds ('' when the result has no timed windows)."""
    timed = [w for w in row.windows if w.end_time > 0 or w.start_time > 0]
    if len(timed) < 2:
        return ""
    best = max(timed, key=lambda w: w.score)
    return f"; its highest window scored {best.score:.2f} at {best.start_time:.2f}-{best.end_time:.2f} s"


def vote(row: DetectionResult, card: DetectorCard | None) -> Vote:
    bands: ScoreBands = (card.score_bands if card else None) or DEFAULT_SCORE_BANDS
    looks_for = (card.looks_for if card else None) or "manipulation"
    base = {"detector_id": row.detector_id, "status": row.status, "low": bands.low, "high": bands.high}
    if row.status == "abstained":
        code = f" [{row.abstain_code}]" if row.abstain_code else ""
        return Vote(**base, reason=f"{row.detector_id} abstained{code}: {row.abstain_reason}; it did not vote")
    if row.status != "ok" or row.score is None:
        err = row.error
        what = f"[{err.code}] {err.message}" if err else "no result"
        return Vote(**base, reason=f"{row.detector_id} failed {what}; it did not vote")
    band = bands.band(row.score)
    if band == "high":
        words = f"at or above {bands.high:.2f}: substantial evidence of {looks_for}"
    elif band == "low":
        words = f"below {bands.low:.2f}: little evidence of {looks_for}"
    else:
        words = f"between {bands.low:.2f} and {bands.high:.2f}: uncertain about {looks_for}"
    return Vote(**base, score=row.score, band=band,
                reason=f"{row.detector_id} scored {row.score:.2f}, {words}{_strongest_window(row)}")


def weigh(rows: Iterable[DetectionResult], cards: Mapping[str, DetectorCard] | None = None) -> tuple[EvidenceLevel | None, list[Vote]]:
    """The evidence level (None when no detector gave a score) and every detector's vote."""
    cards = cards or {}
    votes = [vote(r, cards.get(r.detector_id)) for r in rows]
    bands = {v.band for v in votes if v.band is not None}
    if not bands:
        return None, votes
    level: EvidenceLevel = "substantial" if "high" in bands else "uncertain" if "uncertain" in bands else "little"
    return level, votes


def summary(level: EvidenceLevel | None) -> str:
    """The verdict in words, as a report headline."""
    return {"substantial": "substantial evidence of manipulation", "uncertain": "uncertain evidence of manipulation",
            "little": "little evidence of manipulation", None: "no detector could judge this file"}[level]

"""From unit scores to the video's verdict, per face: what the result says about each face track.

A *unit* is one image the model read: a window, framed on the whole frame (``full``)
or on one tracked face (``face``). Per track, its score is the mean of its windows'
scores, as the released code scores a video. The video's score is the maximum over
the analysed tracks: one lip-synced face makes the video fake. The seed design's
top-level fields keep their video-level meaning: ``window_scores`` and
``frame_predictions`` are the windows of the track that decided the score, so
``final_average_score`` is still their mean.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forensics_core.results import FaceTrack, label_for

from .framing import FramingPlan, WindowFace


@dataclass
class Verdict:
    score: float
    window_scores: list[float]  # of the deciding track (or of every window, full framing)
    window_indices: list[int]  # their windows
    deciding_track: int | None
    track_scores: dict[int, float]


def decide(rows: list[dict], framing: FramingPlan) -> Verdict:
    """Per-track means and the maximum over tracks (face framing); the mean over windows (full framing).

    ``rows``: the result's windows (``index``, ``track``, ``score``), in window order.
    """
    if framing.framing == "full":
        score = float(np.mean([r["score"] for r in rows]))
        single = framing.analysed_tracks  # auto chose full because one face fills every window
        return Verdict(score, [r["score"] for r in rows], [r["index"] for r in rows], single[0] if single else None,
                       {single[0]: score} if single else {})
    per_track: dict[int, list[dict]] = {}
    for r in rows:
        per_track.setdefault(r["track"], []).append(r)
    means = {t: float(np.mean([r["score"] for r in v])) for t, v in per_track.items()}
    deciding = max(means, key=lambda t: (means[t], -t))
    mine = per_track[deciding]
    return Verdict(means[deciding], [r["score"] for r in mine], [r["index"] for r in mine], deciding, means)


def face_tracks(faces, framing: FramingPlan, verdict: Verdict | None, threshold: float) -> list[FaceTrack] | None:
    """``result["faces"]``: every track the face stage found, with its score and verdict where it was analysed."""
    if faces is None:
        return None
    out = []
    for track in faces.tracks:
        score = verdict.track_scores.get(track.id) if verdict else None
        windows = sorted({w for w, found in framing.windows.items() for wf in found if wf.track == track.id})
        data = track.to_dict()
        out.append(FaceTrack(track=track.id, score=score, prediction=None if score is None else label_for(score, threshold),
                             frames=data["frames"], boxes=data["boxes"], landmarks=data["landmarks"], windows=windows))
    return out


def window_fields(wf: WindowFace | None, framing: FramingPlan) -> dict:
    """What a window says about its face: ``track`` and ``face_box``, and with face framing the square the
    model saw (``crop``, [x0, y0, x1, y1] in source pixels; it may reach outside the frame, shown grey)."""
    if wf is None:
        return {"track": None, "face_box": None}
    fields = {"track": wf.track, "face_box": [round(v, 1) for v in wf.face_box]}
    if framing.framing == "face":
        x0, y0, side = wf.square
        fields["crop"] = [x0, y0, x0 + side, y0 + side]
    return fields

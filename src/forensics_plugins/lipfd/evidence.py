"""LIPFD-V1's evidence images: the 1000 x 500L window image each window's score came from.

Why through the analysis's own pipeline (:func:`.pipeline.open_video`): the image must be
the one the model read, pixel for pixel, so the same probe, frame count, audio placement,
mel and frame decoding run, from the options the result records; only the frames of the
requested windows are decoded. No model and no weights are involved. The windows found
are checked against the result's (start frame and mel columns): a file that decodes to
other windows than it did (replaced, or another ffmpeg) is refused, not shown wrongly.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from forensics_core.errors import ForensicsError
from forensics_core.evidence_images import EvidenceImage, offer

from .options import LipFDOptions


def options_of(result: dict[str, Any]) -> LipFDOptions:
    """The options the result was computed with (its ``options`` hold the resolved values)."""
    recorded = result.get("options") or {}
    return LipFDOptions(**{k: v for k, v in recorded.items() if k in LipFDOptions.model_fields})


def _caption(span, face=None) -> str:
    """What the image shows; ``face``: the face it is framed on (framing=face: one image per window and face)."""
    shown = f", framed on face track {face.track}" if face is not None else ""
    return (f"frames {span.start_frame}-{span.end_frame} under mel columns {span.mel_begin}-{span.mel_end} "
            f"({span.window_len * 500} x 1000 px){shown}")


def window_images(path: str | os.PathLike, result: dict[str, Any], indices: Sequence[int] | None = None,
                  transform=None) -> list[EvidenceImage]:
    """The window images of ``result``'s windows (``indices``: their ``index`` values; None = all)."""
    from .pipeline import open_video

    wanted = {int(w["index"]): w for w in result.get("windows") or [] if indices is None or int(w["index"]) in set(indices)}
    if not wanted:
        return []
    with open_video(path, options_of(result)) as video:
        spans = [s for s in video.spans if s.index in wanted]
        for s in spans:
            w = wanted[s.index]
            recorded = (int(w["start_frame"]), [int(c) for c in w.get("mel_columns") or [s.mel_begin, s.mel_end]])
            if recorded != (s.start_frame, [s.mel_begin, s.mel_end]):
                raise ForensicsError(
                    f"{path}: window {s.index} of the result starts at frame {recorded[0]} over mel columns {recorded[1]}, "
                    f"but the file now gives frame {s.start_frame} over columns {[s.mel_begin, s.mel_end]}",
                    hint="the file or the decoder changed since the analysis; analyse it again", code="evidence_mismatch")
        if len(spans) != len(wanted):
            missing = sorted(set(wanted) - {s.index for s in spans})
            raise ForensicsError(f"{path}: the file gives no window {missing[0]} for these options", code="evidence_mismatch",
                                 hint="the file changed since the analysis; analyse it again")
        video.spans = spans
        scores = {i: w.get("score") for i, w in wanted.items()}
        framed = video.framing.framing == "face"  # the face and its square are found again, as in the analysis
        return [EvidenceImage(span.index, image, _caption(span, face if framed else None), "input", score=scores.get(span.index))
                for batch in video.batches(transform=transform)
                for span, image, face in zip(batch.spans, batch.images, batch.faces)]


def offer_batch(detector_id: str, path: str | os.PathLike, spans: Iterable[Any], images: Iterable[Any],
                scores: Iterable[float], faces: Iterable[Any] | None = None) -> None:
    """During an analysis: hand a scored batch's window images to the active capture (analyze --report).

    ``faces``: with face framing, the face each image is framed on (else None).
    """
    spans = list(spans)
    faces = list(faces) if faces is not None else [None] * len(spans)
    offer(detector_id, path, [EvidenceImage(span.index, image, _caption(span, face), "input", score=float(score))
                              for span, image, score, face in zip(spans, images, scores, faces)])

"""Evidence images: what a detector looked at, for people to look at.

Results (JSON) carry numbers, not pictures. A detector may offer the images behind its
windows in two ways, both optional:

* :meth:`Detector.evidence(media_path, result, windows=...) <forensics_core.detector.Detector.evidence>`
  recomputes them deterministically from the media for the windows of a result,
  without the model or its weights (``forensics report results.jsonl``);
* during an analysis, a detector that has the images at hand anyway hands them to
  :func:`offer`, which keeps a small copy only while someone asked for them
  (:func:`capturing`, as ``forensics analyze --report`` does), so the media is not
  decoded twice.

The capture converts each image at once (the ``convert`` callable given to
:func:`capturing`, e.g. a thumbnail encoder), so full-resolution pixels are never kept,
and it keeps the images of at most ``limit`` windows per detector and file: those with
the highest ``score`` (ties: the lower window index), the rule reports use to choose
which windows to show, so a dense analysis of thousands of windows keeps only those.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

EvidenceKind = Literal["input", "frame"]


@dataclass(frozen=True)
class EvidenceImage:
    """One image behind one window of a result.

    ``image``: encoded PNG/JPEG bytes, or a uint8 array ``H x W`` (grey) or ``H x W x 3``
    in OpenCV's BGR order. ``kind``: ``"input"`` for the exact image the model read
    (LipFD: the mel strip over the window's frames), ``"frame"`` for a picture of the
    source video. ``boxes``: ``(x0, y0, x1, y1)`` rectangles in the image's own pixels
    (a face box), drawn over it in reports. ``score``: the window's score when known
    (a capture over its limit keeps the highest-scoring windows).
    """

    window_index: int
    image: Any
    caption: str = ""
    kind: EvidenceKind = "input"
    boxes: tuple[tuple[float, float, float, float], ...] = ()
    score: float | None = None


@dataclass
class EvidenceCapture:
    """Images offered during analyses, converted on arrival, keyed by (detector id, media path)."""

    convert: Callable[[EvidenceImage], Any]
    limit: int = 24
    images: dict[tuple[str, str], dict[int, dict[str, Any]]] = field(default_factory=dict)
    ranks: dict[tuple[str, str], dict[int, tuple[float, int]]] = field(default_factory=dict)
    dropped: dict[tuple[str, str], int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @staticmethod
    def _rank(image: EvidenceImage) -> tuple[float, int]:
        """Higher is better: the score, then the earlier window."""
        return (image.score if image.score is not None else float("-inf"), -image.window_index)

    def add(self, detector_id: str, media_path: str, images: Iterable[EvidenceImage]) -> None:
        key = (detector_id, _norm(media_path))
        for image in images:
            rank = self._rank(image)
            with self._lock:
                held, ranks = self.images.setdefault(key, {}), self.ranks.setdefault(key, {})
                if image.window_index not in held and len(held) >= self.limit:
                    worst = min(ranks, key=ranks.__getitem__)
                    if ranks[worst] >= rank:
                        self.dropped[key] = self.dropped.get(key, 0) + 1
                        continue
                    del held[worst], ranks[worst]
                    self.dropped[key] = self.dropped.get(key, 0) + 1
                held.setdefault(image.window_index, {})
                ranks[image.window_index] = max(rank, ranks.get(image.window_index, rank))
            converted = self.convert(image)  # outside the lock: encoding is the slow part
            with self._lock:
                if image.window_index in held:
                    held[image.window_index][image.kind] = converted

    def get(self, detector_id: str, media_path: str) -> dict[tuple[int, str], Any]:
        """``{(window index, kind): converted image}`` captured for this detector and file."""
        held = self.images.get((detector_id, _norm(media_path)), {})
        return {(index, kind): image for index, kinds in held.items() for kind, image in kinds.items()}


_capture: contextvars.ContextVar[EvidenceCapture | None] = contextvars.ContextVar("forensics_evidence", default=None)


def _norm(path: str | os.PathLike) -> str:
    return os.path.realpath(os.fspath(path))


def wanted() -> bool:
    """Is anyone capturing evidence? Detectors check this before preparing images to offer."""
    return _capture.get() is not None


def offer(detector_id: str, media_path: str | os.PathLike, images: Iterable[EvidenceImage]) -> None:
    """Hand images to the active capture (a no-op when nobody captures)."""
    capture = _capture.get()
    if capture is not None:
        capture.add(detector_id, os.fspath(media_path), images)


@contextlib.contextmanager
def capturing(convert: Callable[[EvidenceImage], Any], limit: int = 24) -> Iterator[EvidenceCapture]:
    """Capture the evidence offered by analyses run in this context (this thread and its context)."""
    capture = EvidenceCapture(convert=convert, limit=limit)
    token = _capture.set(capture)
    try:
        yield capture
    finally:
        _capture.reset(token)

"""The face stage: the faces of one file on the frames a detector asks for, followed as tracks.

A detector asks for frames (LIPFD-V1: the first and last frame of each window;
GenD: its sampled frames). The stage decodes and searches those, then adds
*bridge* frames where two consecutive detected frames are not linked with
certainty (:func:`~.tracks.certain_link`): the frame half-way between them,
again and again, until every link is certain, the frames are neighbours, or the
bridge budget (twice as many bridges as requested frames, at least 16) is spent. A
still face costs no bridge; a face that moves, appears or leaves costs a few.
Bridges never extend the span of the requested frames.

One file's detections are computed once per :func:`face_cache` scope and reused
by every detector of an ensemble or scan (``run_ensemble`` opens one scope per
file): the cache holds, per file identity and face model, the faces of each
frame already searched (``None`` for a frame that could not be decoded). The
answer of :func:`find_faces` depends only on the file and the frames asked for,
never on what another detector asked before.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from ...logs import get_logger
from .model import Face, FaceModel, face_model
from .tracks import Track, certain_link, link

log = get_logger("forensics.media.faces")

#: ``read(indices)`` yields ``(index, BGR frame)`` for the indices it can decode, in any order, one at a time
FrameReader = Callable[[list[int]], Iterable[tuple[int, np.ndarray]]]
#: bridges per call: twice as many as the frames asked for, and at least this many
MIN_BRIDGE_BUDGET = 16

_cache: contextvars.ContextVar[dict | None] = contextvars.ContextVar("forensics_face_cache", default=None)


@contextlib.contextmanager
def face_cache() -> Iterator[dict]:
    """Share face detections between the detectors run inside this block (nested blocks share the outer one)."""
    current = _cache.get()
    if current is not None:
        yield current
        return
    token = _cache.set({})
    try:
        yield _cache.get()
    finally:
        _cache.reset(token)


def file_identity(path: str | os.PathLike) -> tuple:
    """Resolved path, size and modification time: a changed file is a different file."""
    p = os.path.realpath(os.fspath(path))
    try:
        st = os.stat(p)
        return (p, st.st_size, st.st_mtime_ns)
    except OSError:
        return (p, None, None)


@dataclass
class FaceTracks:
    """What the face stage found in one file for one request."""

    model: str
    requested: list[int]
    frames: list[int]  # frames searched and decoded (requested and bridges), sorted
    bridges: list[int]
    dropped: list[int]  # frames asked for or bridged that could not be decoded
    detections: dict[int, list[Face]]
    tracks: list[Track]
    frame_size: tuple[int, int] | None = None  # (width, height) of the decoded frames
    seconds: float = 0.0
    detected_now: int = 0  # frames searched by this call (the rest came from the cache)
    notes: list[str] = field(default_factory=list)

    def faces_at(self, frame: int) -> list[Face]:
        return list(self.detections.get(frame, []))

    def largest(self, frame: int) -> Face | None:
        """The largest face detected on ``frame`` (by box area), if any."""
        faces = self.detections.get(frame) or []
        return max(faces, key=lambda f: f.width * f.height, default=None)

    def track_at(self, frame: int) -> list[Track]:
        return [t for t in self.tracks if t.face_at(frame) is not None]

    def to_dict(self) -> dict:
        return {"model": self.model, "requested": self.requested, "frames": self.frames, "bridges": self.bridges,
                "dropped": self.dropped, "frame_size": list(self.frame_size) if self.frame_size else None,
                "seconds": round(self.seconds, 4), "tracks": [t.to_dict() for t in self.tracks]}


def detect_image(image_bgr: np.ndarray, model: FaceModel | str | None = None) -> list[Face]:
    """Faces in one picture (a still image, or a frame a detector already holds), best score first."""
    m = model if isinstance(model, FaceModel) else face_model(model)
    return m.detect(image_bgr)


def _video_fps(path: str | os.PathLike) -> float:
    from ..frames import open_capture

    import cv2

    cap = open_capture(path)
    if cap is None:
        return 0.0
    try:
        return float(cap.get(cv2.CAP_PROP_FPS)) or 0.0
    finally:
        cap.release()


def find_faces(path: str | os.PathLike, frames: Iterable[int], *, fps: float | None = None,
               read: FrameReader | None = None, model: FaceModel | str | None = None,
               bridge_budget: int | None = None, on_frame: Callable[[int], None] | None = None) -> FaceTracks:
    """Detect faces on ``frames`` of the video at ``path`` (plus bridge frames) and follow them as tracks.

    ``read(indices)`` yields ``(index, BGR frame)`` pairs (default
    :func:`forensics_core.media.frames.iter_frames`); each frame is searched as it
    arrives and let go, so memory does not grow with the request. An index it does
    not yield is a frame that could not be decoded: dropped, not fatal. Boxes and
    landmarks are in the pixels of the decoded (displayed) frame. ``on_frame(1)`` is
    called after each frame searched (progress; bridges come on top of the request).
    """
    from ..frames import iter_frames

    started = time.perf_counter()
    m = model if isinstance(model, FaceModel) else face_model(model)
    requested = sorted({int(f) for f in frames if int(f) >= 0})
    read = read or (lambda indices: iter_frames(path, indices))
    if fps is None:
        fps = _video_fps(path)
    shared = _cache.get()
    entry = shared.setdefault((file_identity(path), m.name), {"frames": {}, "size": None}) if shared is not None \
        else {"frames": {}, "size": None}
    store: dict[int, list[Face] | None] = entry["frames"]
    searched = [0]

    def search(indices: list[int]) -> None:
        todo = [i for i in indices if i not in store]
        if not todo:
            return
        wanted = set(todo)
        for i, image in read(todo):
            if i not in wanted or i in store:
                continue
            entry["size"] = (int(image.shape[1]), int(image.shape[0]))
            store[i] = m.detect(image)
            del image
            searched[0] += 1
            if on_frame is not None:
                on_frame(1)
        for i in todo:
            store.setdefault(i, None)  # not decodable

    search(requested)
    bridges: list[int] = []
    budget = max(MIN_BRIDGE_BUDGET, 2 * len(requested)) if bridge_budget is None else bridge_budget
    used = set(requested)
    gave_up: set[tuple[int, int]] = set()
    while budget > 0:
        good = sorted(f for f in used if store.get(f) is not None)
        mids = []
        for a, b in zip(good, good[1:]):
            if b - a < 2 or (a, b) in gave_up or certain_link(store[a], store[b]):
                continue
            mid = (a + b) // 2
            if mid in used:  # tried already and could not be decoded
                gave_up.add((a, b))
                continue
            mids.append(mid)
        if not mids:
            break
        if len(mids) > budget:
            log.info("face bridge budget spent; the remaining links go by plausibility", path=os.fspath(path))
            mids = mids[:budget]
        budget -= len(mids)
        search(mids)
        bridges.extend(mids)
        used.update(mids)

    searched_frames = sorted(f for f in used if store.get(f) is not None)
    detections = {f: store[f] for f in searched_frames}
    dropped = sorted(f for f in used if store.get(f) is None)
    result = FaceTracks(model=m.name, requested=requested, frames=searched_frames, bridges=sorted(bridges),
                        dropped=dropped, detections=detections, tracks=link(detections, fps),
                        frame_size=entry["size"], seconds=time.perf_counter() - started,
                        detected_now=searched[0])
    if dropped:
        result.notes.append(f"{len(dropped)} frame(s) could not be decoded and were left out of the face tracks: {dropped[:10]}")
    return result

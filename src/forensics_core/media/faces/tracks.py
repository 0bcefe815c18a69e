"""Following faces: per-frame detections linked into tracks with stable ids.

Two rules, both on geometry alone (position and size, measured in face sizes so
they hold for a close-up and a wide shot alike):

* **Certain** (:func:`certain_link`): two detected frames are linked with
  certainty when every face in one has exactly one face in the other within one
  face size of its centre and within x1.5 of its size, and no face is left over.
  The face stage adds detection frames between two frames until their link is
  certain (or they are neighbours, or the bridge budget is spent): that is what
  "enough frames between them to follow each face" means.
* **Linking** (:func:`link`): frames are walked in order; each face joins the
  active track that is nearest in face sizes, if that is plausible for the time
  between the two frames (:data:`SPEED` face sizes per second plus half a face
  size, size within x2); otherwise it starts a track. A track that misses more
  than :data:`MAX_MISSES` detected frames in a row ends (one missed detection
  does not split a track). Ids number the tracks by first appearance, then left to right.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .model import Face

#: a certain link: centre within this many face sizes, size within CERTAIN_SIZE
CERTAIN_MOTION = 1.0
CERTAIN_SIZE = 1.5
#: a plausible link: within (PLAUSIBLE_MOTION + SPEED * seconds) face sizes, size within PLAUSIBLE_SIZE
PLAUSIBLE_MOTION = 0.5
SPEED = 3.0
PLAUSIBLE_SIZE = 2.0
#: a track ends when it is missing from more than this many detected frames in a row
MAX_MISSES = 1


def motion(a: Face, b: Face) -> float:
    """Distance between the centres in face sizes (the geometric mean of both sizes)."""
    scale = max(np.sqrt(a.size * b.size), 1e-6)
    return float(np.hypot(a.centre[0] - b.centre[0], a.centre[1] - b.centre[1]) / scale)


def size_ratio(a: Face, b: Face) -> float:
    small, big = sorted((max(a.size, 1e-6), max(b.size, 1e-6)))
    return big / small


def _close(a: Face, b: Face) -> bool:
    return motion(a, b) <= CERTAIN_MOTION and size_ratio(a, b) <= CERTAIN_SIZE


def certain_link(a: list[Face], b: list[Face]) -> bool:
    """Do the faces of two frames pair up one to one, each pair close, with nothing ambiguous?"""
    if len(a) != len(b):
        return False
    for fa in a:
        if sum(_close(fa, fb) for fb in b) != 1:
            return False
    return all(sum(_close(fa, fb) for fa in a) == 1 for fb in b)


@dataclass
class Track:
    """One face followed through the detected frames (sorted): its boxes, landmarks and scores."""

    id: int
    frames: list[int] = field(default_factory=list)
    faces: list[Face] = field(default_factory=list)

    @property
    def first(self) -> int:
        return self.frames[0]

    @property
    def last(self) -> int:
        return self.frames[-1]

    def face_at(self, frame: int) -> Face | None:
        """The detection on ``frame``, if this track was detected there."""
        i = int(np.searchsorted(self.frames, frame))
        return self.faces[i] if i < len(self.frames) and self.frames[i] == frame else None

    def box_at(self, frame: int) -> tuple[float, float, float, float] | None:
        """The box on ``frame``: detected, or interpolated between the detections around it; None outside the track."""
        if not self.frames or frame < self.first or frame > self.last:
            return None
        i = int(np.searchsorted(self.frames, frame))
        if self.frames[i] == frame:
            return self.faces[i].box
        f0, f1 = self.frames[i - 1], self.frames[i]
        t = (frame - f0) / (f1 - f0)
        b0, b1 = np.asarray(self.faces[i - 1].box), np.asarray(self.faces[i].box)
        return tuple(float(v) for v in (1 - t) * b0 + t * b1)

    def to_dict(self) -> dict:
        return {"track": self.id, "frames": list(self.frames),
                "boxes": [[round(v, 1) for v in f.box] for f in self.faces],
                "landmarks": [f.to_dict()["landmarks"] for f in self.faces],
                "scores": [round(f.score, 4) for f in self.faces]}


def link(detections: dict[int, list[Face]], fps: float | None = None) -> list[Track]:
    """Tracks from the detections of each frame (frames in any order; ``fps`` converts frames to seconds)."""
    rate = fps if fps and fps > 0 else 25.0
    active: list[tuple[Track, int]] = []  # (track, misses in a row)
    done: list[Track] = []
    for frame in sorted(detections):
        faces = detections[frame]
        pairs = []
        for t, (track, _) in enumerate(active):
            last = track.faces[-1]
            seconds = (frame - track.last) / rate
            for k, face in enumerate(faces):
                d = motion(last, face)
                if d <= PLAUSIBLE_MOTION + SPEED * seconds and size_ratio(last, face) <= PLAUSIBLE_SIZE:
                    pairs.append((d + np.log(size_ratio(last, face)), t, k))
        taken_t, taken_k = set(), set()
        for _, t, k in sorted(pairs):
            if t in taken_t or k in taken_k:
                continue
            taken_t.add(t)
            taken_k.add(k)
            active[t][0].frames.append(frame)
            active[t][0].faces.append(faces[k])
        still = []
        for t, (track, misses) in enumerate(active):
            if t in taken_t:
                still.append((track, 0))
            elif misses + 1 > MAX_MISSES:
                done.append(track)
            else:
                still.append((track, misses + 1))
        for k, face in enumerate(faces):
            if k not in taken_k:
                still.append((Track(id=-1, frames=[frame], faces=[face]), 0))
        active = still
    tracks = done + [t for t, _ in active]
    tracks.sort(key=lambda t: (t.first, t.faces[0].centre[0]))
    for i, t in enumerate(tracks):
        t.id = i
    return tracks

"""Where GenD's faces come from: the ``landmarks`` option, or the host's face stage.

Upstream keeps the largest face of each frame (RetinaFace box area) and aligns it on
its 5 landmarks. A frame without a face is skipped; a file with no face at all gets
no score (GenD abstains with ``no_face``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forensics_core.errors import InvalidOptionsError


@dataclass(frozen=True)
class FaceChoice:
    """The face GenD analyses on one frame."""

    landmarks: np.ndarray  # 5 x 2, source pixels: left eye, right eye, nose tip, left/right mouth corner
    box: list[float] | None = None  # [x0, y0, x1, y1] from the face detector; None with the landmarks option
    track: int | None = None
    score: float | None = None


def given_landmarks(landmarks, *, still: bool, frame_count: int) -> dict[int, FaceChoice]:
    """The ``landmarks`` option as frame -> face; an image takes 5 points (or ``{0: points}``)."""
    if isinstance(landmarks, dict):
        frames = dict(sorted(landmarks.items()))
        if still and set(frames) != {0}:
            raise InvalidOptionsError("landmarks: an image has one frame, 0", hint="give 5 [x, y] points for an image")
        beyond = [i for i in frames if i >= frame_count]
        if beyond:
            raise InvalidOptionsError(f"landmarks: frame {beyond[0]} is beyond the video's {frame_count} frames",
                                      hint=f"frame indices run from 0 to {frame_count - 1}")
        return {i: FaceChoice(np.asarray(p, dtype=np.float64)) for i, p in frames.items()}
    if not still:
        raise InvalidOptionsError("landmarks: a video needs a mapping frame index -> 5 points",
                                  hint='e.g. --option \'landmarks={"120": [[x, y], [x, y], [x, y], [x, y], [x, y]]}\'')
    return {0: FaceChoice(np.asarray(landmarks, dtype=np.float64))}


def largest(faces) -> FaceChoice | None:
    """The largest face by box area, as upstream; None when there is none."""
    best = None
    for face in faces:
        x0, y0, x1, y1 = (float(v) for v in face.box)
        area = (x1 - x0) * (y1 - y0)
        if best is None or area > best[0]:
            best = (area, face)
    if best is None:
        return None
    face = best[1]
    return FaceChoice(np.asarray(face.landmarks, dtype=np.float64).reshape(5, 2), [float(v) for v in face.box],
                      getattr(face, "track", None), getattr(face, "score", None))


def detect_largest(frame_rgb: np.ndarray) -> FaceChoice | None:
    """The largest face the host's face stage finds on one RGB frame."""
    raise NotImplementedError("the host face stage is not merged yet")

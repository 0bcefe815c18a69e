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


def choice(face, track: int | None = None) -> FaceChoice:
    """A host :class:`~forensics_core.media.faces.Face` as GenD's choice for its frame.

    The face stage gives continuous coordinates (pixel ``i`` spans ``[i, i+1)``); the
    alignment, like upstream's RetinaFace landmarks and the ``landmarks`` option, puts
    pixel centres on integers (OpenCV), so the landmarks move by half a pixel. The box
    stays as the face stage gives it (what reports draw).
    """
    return FaceChoice(np.asarray(face.landmarks, dtype=np.float64).reshape(5, 2) - 0.5, [float(v) for v in face.box],
                      track, float(face.score))


#: the face detector sees at most this many pixels on the long side, as upstream's RetinaFace (640 x 640 letterbox)
DETECT_SIDE = 640


def detect(picture_bgr: np.ndarray) -> list:
    """The host face stage's faces on a picture shrunk to at most ``DETECT_SIDE`` px (bilinear,
    as upstream's letterbox), boxes and landmarks scaled back to the picture's pixels."""
    import cv2

    from forensics_core.media.faces import Face, detect_image

    h, w = picture_bgr.shape[:2]
    factor = min(1.0, DETECT_SIDE / max(h, w))
    if factor == 1.0:
        return detect_image(np.ascontiguousarray(picture_bgr))
    small = cv2.resize(picture_bgr, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_LINEAR)
    sx, sy = w / small.shape[1], h / small.shape[0]  # continuous coordinates scale exactly
    return [Face(box=(f.box[0] * sx, f.box[1] * sy, f.box[2] * sx, f.box[3] * sy),
                 landmarks=np.asarray(f.landmarks, dtype=np.float64) * (sx, sy), score=f.score)
            for f in detect_image(small)]


def largest(faces):
    """The largest face by box area (upstream's rule), or None."""
    return max(faces, key=lambda f: f.width * f.height, default=None)


def largest_in_image(image_rgb: np.ndarray) -> FaceChoice | None:
    """The largest face in a picture (RGB)."""
    best = largest(detect(np.ascontiguousarray(image_rgb[:, :, ::-1])))
    return None if best is None else choice(best)


class VideoFaces:
    """The largest face of each sampled frame, and the tracks that link them.

    GenD needs the largest face of each frame it samples, not a face followed between
    them, so it searches only those frames (no bridge frames), on the pictures it
    decoded for alignment, at upstream's detection size.
    """

    def __init__(self, fps: float):
        self.fps = fps
        self.detections: dict[int, list] = {}

    def largest(self, index: int, frame_bgr: np.ndarray) -> FaceChoice | None:
        faces = detect(frame_bgr)
        best = largest(faces)
        if best is None:
            return None
        self.detections[index] = faces
        return choice(best)

    def tracks(self, chosen: dict[int, FaceChoice]) -> dict[int, FaceChoice]:
        """The chosen faces with the id of the track each belongs to (linked over the analysed frames)."""
        from forensics_core.media.faces import link

        out = {}
        tracks = link({i: self.detections[i] for i in sorted(chosen)}, self.fps)
        for index, face in chosen.items():
            track = next((t.id for t in tracks if (f := t.face_at(index)) is not None
                          and np.allclose(f.box, face.box)), None)
            out[index] = FaceChoice(face.landmarks, face.box, track, face.score)
        return out

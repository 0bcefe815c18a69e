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


def largest_in_image(image_rgb: np.ndarray) -> FaceChoice | None:
    """The largest face the host's face stage finds in a picture (by box area, as upstream)."""
    from forensics_core.media.faces import detect_image

    faces = detect_image(np.ascontiguousarray(image_rgb[:, :, ::-1]))
    best = max(faces, key=lambda f: f.width * f.height, default=None)
    return None if best is None else choice(best)


class VideoFaces:
    """The face stage on a video, batch by batch: each batch's frames are decoded once and kept for alignment.

    Frames the detection already saw (another detector of the same ensemble) come from the
    stage's cache; GenD decodes them only to align. No bridge frames are searched: GenD
    needs the largest face of each sampled frame, not a face followed between them.
    """

    def __init__(self, path, fps: float):
        self.path, self.fps = path, fps
        self.detections: dict[int, list] = {}

    def batch(self, indices: list[int], read) -> tuple[dict[int, np.ndarray], dict[int, FaceChoice]]:
        """``read(indices) -> {index: BGR frame}``; returns the decoded frames and the largest face of each."""
        from forensics_core.media.faces import find_faces

        frames = read(indices)
        found = find_faces(self.path, indices, fps=self.fps, bridge_budget=0,
                           read=lambda wanted: {i: frames[i] for i in wanted if i in frames})
        chosen = {}
        for index in frames:
            face = found.largest(index)
            if face is not None:
                self.detections[index] = found.faces_at(index)
                chosen[index] = choice(face)
        return frames, chosen

    def tracks(self, chosen: dict[int, FaceChoice]) -> dict[int, FaceChoice]:
        """The chosen faces with the id of the track each belongs to (tracks linked over the analysed frames)."""
        from forensics_core.media.faces import link

        out = {}
        tracks = link({i: self.detections[i] for i in sorted(chosen)}, self.fps)
        for index, face in chosen.items():
            track = next((t.id for t in tracks if (f := t.face_at(index)) is not None
                          and np.allclose(f.box, face.box)), None)
            out[index] = FaceChoice(face.landmarks, face.box, track, face.score)
        return out

"""Framing: which square of each frame LIPFD-V1 looks at, and on which face.

The published checkpoint was trained on AVLips, built from LRS3 face tracks: 224x224
clips cut around a detected face by the VGG face-track pipeline (SSD/S3FD face
detector; the public form is ``run_pipeline.py`` of joonson/syncnet_python, crop
scale 0.4). That pipeline cuts a square of side 1.4x the face box's longer side,
centred horizontally on the face, from half a box above the face's centre to 0.9 of
a box below it (so the box's centre sits 0.36 of the way down: forehead at the top,
chin, neck and collar below), padded with grey 110 where it leaves the frame. LipFD's
own crops agree: its "face" scale (rows/cols 28-196 of the 224 full crop) spans
exactly the face box's width in that framing, and its "lip" scale (61-163) is centred
where the mouth lands.

* ``full``: the released preprocessing, the whole frame squashed to 500x500
  (bit-identical; the reference vectors run with it).
* ``face``: per window and per tracked face, that training square around the face
  (one square for the window's L frames, from the face's boxes on its first and last
  frame), then the unchanged 500x500 resize.
* ``auto`` (default): ``full`` when the whole frame already is that square, i.e.
  every window has exactly one face and its training square covers the frame with
  IoU >= 0.5 (the usual "same box" criterion); else ``face``.

With ``face`` or ``auto`` a window without a tracked face is not scored; a track is
analysed on its own when it covers at least a fifth of the windows (and at least
one), the ``max_faces`` tracks covering most windows first.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .video import FRAME_SIZE

#: the VGG face-track crop: half-side of the square = (1 + CROP_SCALE) * half the box's longer side
CROP_SCALE = 0.4
#: grey used where the square leaves the frame (the VGG pipeline's padding)
PAD_VALUE = 110
#: auto keeps the whole frame when the training square and the frame overlap at least this much
AUTO_FULL_IOU = 0.5
#: a track is analysed on its own when it covers at least this share of the windows (and at least one)
MIN_TRACK_SHARE = 0.2

Box = tuple[float, float, float, float]
Square = tuple[int, int, int]  # x0, y0, side (integer pixels; may reach outside the frame)


def training_square(box: Box) -> Square:
    """The square the training clips show around a face box: side 1.4x the longer side, face centre 0.36 down."""
    half = max(box[2] - box[0], box[3] - box[1]) / 2
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = 2 * half * (1 + CROP_SCALE)
    return int(round(cx - side / 2)), int(round(cy - half)), max(int(round(side)), 1)


def square_iou_with_frame(square: Square, width: int, height: int) -> float:
    x0, y0, side = square
    iw = max(0, min(x0 + side, width) - max(x0, 0))
    ih = max(0, min(y0 + side, height) - max(y0, 0))
    inter = iw * ih
    return inter / (side * side + width * height - inter)


def cut_square(frame: np.ndarray, square: Square, size: int = FRAME_SIZE) -> np.ndarray:
    """The square of ``frame`` (grey 110 outside it), resized as the released code resizes whole frames."""
    import cv2

    x0, y0, side = square
    h, w = frame.shape[:2]
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if sx0 == x0 and sy0 == y0 and sx1 == x0 + side and sy1 == y0 + side:
        tile = frame[sy0:sy1, sx0:sx1]
    else:
        tile = np.full((side, side, frame.shape[2]), PAD_VALUE, dtype=frame.dtype)
        if sx1 > sx0 and sy1 > sy0:
            tile[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = frame[sy0:sy1, sx0:sx1]
    return cv2.resize(tile, (size, size), interpolation=cv2.INTER_LINEAR)


@dataclass(frozen=True)
class WindowFace:
    """One face in one window: the track, its box on the window's first frame, the square cut for the window."""

    window: int
    track: int
    face_box: Box
    square: Square


@dataclass
class FramingPlan:
    """What the face stage decided for one video."""

    requested: str  # the option: auto, full or face
    framing: str  # what runs: full or face
    windows: dict[int, list[WindowFace]]  # window index -> faces analysed in it (face) or seen in it (full)
    analysed_tracks: list[int]  # tracks analysed on their own (face framing; the single face when auto chose full)
    reason: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def windows_with_face(self) -> int:
        return sum(1 for faces in self.windows.values() if faces)

    def units(self, n_windows: int) -> list[tuple[int, WindowFace | None]]:
        """What the model reads, in order: (window, face) pairs. ``full``: every window once, with the
        largest face seen in it (or None); ``face``: every analysed face of every window."""
        if self.framing == "full":
            return [(w, (self.windows.get(w) or [None])[0]) for w in range(n_windows)]
        return [(w, wf) for w in range(n_windows) for wf in self.windows.get(w, [])]

    def transform(self, spans, window_len: int) -> Callable[[int, np.ndarray], Any] | None:
        """The frame reader's ``transform(index, frame)`` for face framing: ``{(window, track): 500x500 crop}``
        for every face of every window the frame belongs to; None for full framing (the plain resize)."""
        if self.framing != "face":
            return None
        by_frame: dict[int, list[WindowFace]] = {}
        for span in spans:
            for wf in self.windows.get(span.index, []):
                for k in range(window_len):
                    by_frame.setdefault(span.start_frame + k, []).append(wf)

        def cut(index: int, frame: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
            return {(wf.window, wf.track): cut_square(frame, wf.square) for wf in by_frame.get(index, [])}

        return cut


def find_window_faces(path, starts: list[int], window_len: int, fps: float | None, options,
                      warnings: list[str], on_frame: Callable[[float], None] | None = None) -> tuple[Any, FramingPlan]:
    """Ask the host's face stage for the first and last frame of every window, then decide the framing.

    With ``framing=full`` a face model that cannot load is a warning (faces are only
    reported); with ``face`` or ``auto`` it is the error (``face_model_unavailable``).
    """
    from forensics_core.errors import FaceModelError, MediaProcessingError
    from forensics_core.media.faces import find_faces

    frames = sorted({f for s in starts for f in (s, s + window_len - 1)})
    try:
        faces = find_faces(path, frames, fps=fps, on_frame=on_frame)
    except FaceModelError as exc:
        if options.framing != "full":
            raise
        warnings.append(f"faces were not looked for: {exc.message}")
        return None, FramingPlan("full", "full", {}, [], "the face model is unavailable")
    if frames and not faces.frames:  # not "no face": no picture at all, which is the file's fault
        raise MediaProcessingError("decode_failed", f"{path}: none of the frames {frames[0]}..{frames[-1]} could be decoded",
                                   path=path)
    warnings.extend(faces.notes)
    return faces, plan(options.framing, faces.tracks, starts, window_len, faces.frame_size, options.max_faces)


def window_faces(tracks, starts: list[int], window_len: int) -> dict[int, list[WindowFace]]:
    """Per window, every track detected on both its first and last frame, with the window's training square."""
    out: dict[int, list[WindowFace]] = {}
    for w, start in enumerate(starts):
        end = start + window_len - 1
        found = []
        for track in tracks:
            first, last = track.face_at(start), track.face_at(end)
            if first is None or last is None:
                continue
            mean_box = tuple((a + b) / 2 for a, b in zip(first.box, last.box))
            found.append(WindowFace(w, track.id, tuple(float(v) for v in first.box), training_square(mean_box)))
        out[w] = found
    return out


def plan(requested: str, tracks, starts: list[int], window_len: int, frame_size: tuple[int, int] | None,
         max_faces: int) -> FramingPlan:
    """Decide the framing of a video from its face tracks (see the module docstring for the rules)."""
    seen = window_faces(tracks, starts, window_len)
    n = len(starts)
    if requested == "full":
        largest = {w: sorted(fs, key=lambda f: -(f.face_box[2] - f.face_box[0]) * (f.face_box[3] - f.face_box[1]))[:1]
                   for w, fs in seen.items()}
        return FramingPlan(requested, "full", largest, [], "framing=full: the whole frame, as the released code")
    if requested == "auto" and frame_size is not None and n and all(len(fs) == 1 for fs in seen.values()):
        ious = [square_iou_with_frame(fs[0].square, *frame_size) for fs in seen.values()]
        ids = {fs[0].track for fs in seen.values()}
        if min(ious) >= AUTO_FULL_IOU and len(ids) == 1:
            return FramingPlan(requested, "full", seen, sorted(ids),
                               f"one face in every window, framed like the training clips (IoU {min(ious):.2f} >= {AUTO_FULL_IOU})")
    coverage: dict[int, int] = {}
    for fs in seen.values():
        for f in fs:
            coverage[f.track] = coverage.get(f.track, 0) + 1
    needed = max(1, math.ceil(MIN_TRACK_SHARE * n))
    ranked = sorted((t for t, c in coverage.items() if c >= needed), key=lambda t: (-coverage[t], t))
    chosen = ranked[:max_faces]
    notes = []
    if len(ranked) > max_faces:
        notes.append(f"{len(ranked)} faces cover enough windows; the {max_faces} covering most were analysed (max_faces)")
    kept = {w: [f for f in fs if f.track in chosen] for w, fs in seen.items()}
    reason = ("no face was tracked through any window" if not chosen else
              f"{len(chosen)} face track(s) framed like the training clips")
    return FramingPlan(requested, "face", kept, chosen, reason, notes)

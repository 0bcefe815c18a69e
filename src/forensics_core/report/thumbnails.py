"""Evidence images as small data-URI thumbnails, and source frames for face boxes.

Why JPEG data URIs scaled down: the report must be one file that opens anywhere, and a
LipFD window image is 2500 x 1000 px (7.5 MB of pixels); at 600 px wide and quality 82 it
is about 40 kB, so a 10-window report stays far under its 5 MB budget.
"""
from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from dataclasses import dataclass

from ..evidence_images import EvidenceImage

MAX_WIDTH = 600
MAX_HEIGHT = 400
JPEG_QUALITY = 82


@dataclass(frozen=True)
class Thumbnail:
    """An encoded, scaled image ready for an ``<img src>``; ``boxes`` are in its own pixels."""

    window_index: int
    kind: str
    caption: str
    uri: str
    width: int
    height: int
    boxes: tuple[tuple[float, float, float, float], ...] = ()

    @property
    def nbytes(self) -> int:
        return len(self.uri)


def _as_array(image):
    import cv2
    import numpy as np

    if isinstance(image, (bytes, bytearray, memoryview)):
        decoded = cv2.imdecode(np.frombuffer(bytes(image), dtype=np.uint8), cv2.IMREAD_COLOR)
        if decoded is None:
            raise ValueError("evidence image bytes are not a PNG/JPEG image")
        return decoded
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3)):
        raise ValueError(f"evidence image must be uint8 HxW or HxWx3 (BGR), got {arr.dtype} {arr.shape}")
    return arr


def make_thumbnail(image: EvidenceImage, *, max_width: int = MAX_WIDTH, max_height: int = MAX_HEIGHT,
                   quality: int = JPEG_QUALITY) -> Thumbnail:
    """Scale (area interpolation, never up) and encode as a JPEG data URI."""
    import cv2

    arr = _as_array(image.image)
    h, w = arr.shape[:2]
    scale = min(1.0, max_width / w, max_height / h)
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(arr, (tw, th), interpolation=cv2.INTER_AREA) if scale < 1.0 else arr
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode the evidence image")
    sx, sy = tw / w, th / h
    boxes = tuple((x0 * sx, y0 * sy, x1 * sx, y1 * sy) for x0, y0, x1, y1 in image.boxes)
    return Thumbnail(image.window_index, image.kind, image.caption,
                     "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii"), tw, th, boxes)


def source_frames(media_path: str | os.PathLike, wanted: Sequence[tuple[int, int, Sequence[float]]]) -> list[EvidenceImage]:
    """The source frame of each ``(window index, frame index, face box)``, the box drawn over it.

    For windows that carry a ``face_box`` (source pixels of the displayed frame): the report
    shows where the face was, whatever detector found it. Frames are read by seeking.
    """
    import cv2

    from ..errors import reading_media
    from ..media import validate_path

    path = validate_path(media_path)
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:  # OpenCV crashes on such a name; media.paths.open_for_decoder (hardening) opens it
        raise ValueError("OpenCV cannot open a file name that is not UTF-8") from None
    out: list[EvidenceImage] = []
    with reading_media(path):
        cap = cv2.VideoCapture(os.fspath(path), cv2.CAP_FFMPEG)
        try:
            for window_index, frame_index, box in sorted(wanted, key=lambda w: w[1]):
                cap.set(cv2.CAP_PROP_POS_FRAMES, frame_index)
                ok, frame = cap.read()
                if ok:
                    out.append(EvidenceImage(window_index, frame, f"source frame {frame_index}", "frame",
                                             (tuple(float(v) for v in box[:4]),)))
        finally:
            cap.release()
    return out

"""Pictures for GenD: a still image, or chosen frames of a video, as RGB arrays.

Still images are decoded with Pillow, as upstream (imageio's Pillow plugin), and
turned upright from their EXIF orientation, so that landmarks and boxes refer to the
picture as it is displayed (upstream ignores EXIF; for a photo without an orientation
tag the pixels are the same). Video frames come from OpenCV through LipFD's frame
reader (frame-accurate seeks, verified), a few at a time, so memory holds at most
``CHUNK`` full frames whatever the video's length or resolution.
"""
from __future__ import annotations

import inspect
import os
from collections.abc import Iterable, Iterator

import numpy as np

from forensics_core.errors import MediaProcessingError, reading_media

#: frames decoded per reader pass (each pass seeks in increasing order)
CHUNK = 8


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as an upright H x W x 3 uint8 RGB array (alpha dropped, palettes and grey expanded)."""
    from PIL import Image, ImageOps

    with reading_media(path), Image.open(os.fspath(path)) as im:
        im.seek(0)
        upright = ImageOps.exif_transpose(im)
        return np.asarray(upright.convert("RGB"))


def read_frames(path: str | os.PathLike, indices: Iterable[int], *, info, limits) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, RGB frame)`` for each wanted index, in increasing order within each chunk of ``CHUNK``."""
    from forensics_plugins.lipfd.video import FrameReader

    wanted = list(indices)
    for start in range(0, len(wanted), CHUNK):
        chunk = sorted(set(wanted[start:start + CHUNK]))
        with FrameReader(path, info=info, limits=limits) as reader:
            kwargs = {}
            if "transform" in inspect.signature(reader.read_windows).parameters:
                kwargs["transform"] = lambda _index, frame: frame  # full resolution, not LipFD's 500 x 500
            frames = reader.read_windows(chunk, 1, "auto", **kwargs)
        for index in chunk:
            yield index, frames.pop(index)[:, :, ::-1]


def frame_count(path: str | os.PathLike, *, info, limits) -> tuple[int, float]:
    """(number of frames, fps) as the frame reader sees them (stored count, else counted packets)."""
    from forensics_plugins.lipfd.video import FrameReader

    with FrameReader(path, info=info, limits=limits) as reader:
        count, fps = reader.frame_count, reader.fps or (info.fps or 0.0)
        if count <= 0:
            count = reader.count_frames(limit=int((limits.max_duration_s or 4 * 3600) * max(fps, 1) * 2))
    if count <= 0:
        raise MediaProcessingError("decode_failed", f"{path}: no decodable video frames", path=path)
    return count, fps

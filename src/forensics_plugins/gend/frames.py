"""Pictures for GenD: a still image, or chosen frames of a video.

Still images are decoded with Pillow, as upstream (imageio's Pillow plugin), and
turned upright from their EXIF orientation, so that landmarks and boxes refer to the
picture as it is displayed (upstream ignores EXIF; for a photo without an orientation
tag the pixels are the same). Video frames come from the host's frame reader
(:mod:`forensics_core.media.frames`: OpenCV's FFmpeg backend, frames numbered in
decoding order from 0 as LIPFD-V1 and the face stage number them), a pass at a time:
one pass decodes its frames in increasing order (seeking far ahead), and holds at most
256 MB of them (32 frames of 720p, 4 of 4K), whatever the video's length.
"""
from __future__ import annotations

import os

import numpy as np

from forensics_core.errors import MediaProcessingError, reading_media

#: full frames held at once while sampling: this many bytes' worth, within [MIN_PASS, MAX_PASS] frames
PASS_BYTES = 256 << 20
MIN_PASS, MAX_PASS = 2, 32
#: demuxers whose headers store the frame count (what upstream's PyAV reads); others are counted by packets
COUNTED_FORMATS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "avi"})


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as an upright H x W x 3 uint8 RGB array (alpha dropped, palettes and grey expanded)."""
    from PIL import Image, ImageOps

    with reading_media(path), Image.open(os.fspath(path)) as im:
        im.seek(0)
        upright = ImageOps.exif_transpose(im)
        return np.asarray(upright.convert("RGB"))


def frames_per_pass(info) -> int:
    """How many full frames one decoding pass may hold (bounded memory, fewer seeks through a long GOP)."""
    w, h = info.display_size or (1920, 1080)
    return max(MIN_PASS, min(MAX_PASS, PASS_BYTES // max(1, w * h * 3)))


def read_bgr(path: str | os.PathLike, indices: list[int]) -> dict[int, np.ndarray]:
    """The decodable BGR frames among ``indices`` (an undecodable frame is left out, as upstream skips it)."""
    from forensics_core.media.frames import read_frames

    return read_frames(path, indices)


def frame_count(path: str | os.PathLike, *, info, limits) -> tuple[int, float]:
    """(number of frames, fps): the container's stored count (mp4, mov, avi), else the packets counted."""
    import cv2

    from forensics_core.media import probe
    from forensics_core.media.frames import open_capture

    with reading_media(path):
        cap = open_capture(path)
        if cap is None:
            raise MediaProcessingError("decode_failed", f"{path}: OpenCV could not open the video stream", path=path)
        try:
            fps, stored = float(cap.get(cv2.CAP_PROP_FPS)) or 0.0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        finally:
            cap.release()
    count = stored if info.format_name in COUNTED_FORMATS and stored > 0 else (probe(path, limits=limits, exact=True).frame_count or 0)
    if count <= 0:
        raise MediaProcessingError("decode_failed", f"{path}: no decodable video frames", path=path)
    return count, fps or (info.fps or 0.0)

"""Frames by index, for host stages that look at pictures (the face stage).

Frames are counted in decoding order from 0 with OpenCV's FFmpeg backend, the
decoder and the numbering LIPFD-V1 uses, so frame ``i`` here is frame ``i``
there, rotation metadata applied (the displayed picture). A frame the decoder
cannot produce is left out of the answer and the next one keeps its number
(OpenCV moves past a packet that fails to decode); only a long run of failures
counts as the end of the stream. Far-apart frames are reached by seeking, trusted
only when the decoded frame's timestamp lands where a sequential read would;
otherwise the file is read sequentially.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from ..errors import MediaProcessingError, reading_media
from ..logs import get_logger
from .paths import display_path, open_for_decoder

log = get_logger("forensics.media.frames")

#: read forward instead of seeking when the next wanted frame is at most this far ahead
SEQUENTIAL_GAP = 48
#: this many failed reads in a row is the end of the stream
END_OF_STREAM = 16


def open_capture(path: str | bytes | os.PathLike):
    """An OpenCV capture of ``path`` (FFmpeg backend), or ``None`` when it cannot be opened.

    OpenCV is handed ``/proc/self/fd/N``, never the user's name (it crashes on names that
    are not UTF-8); the capture keeps its own descriptor, so ours is closed at once.
    """
    import cv2

    with open_for_decoder(path) as source:
        cap = cv2.VideoCapture(source.path, cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        return None
    return cap


class _Cursor:
    """A capture and the index of the frame its next read returns."""

    def __init__(self, path: str | os.PathLike):
        import cv2

        self.path = path
        self.cap = open_capture(path)
        self.position = 0
        self.fps = float(self.cap.get(cv2.CAP_PROP_FPS)) if self.cap is not None else 0.0
        self.can_seek = self.fps > 0

    def restart(self) -> None:
        self.cap.release()
        self.cap = open_capture(self.path)
        self.position = 0

    def seek(self, index: int) -> np.ndarray | None:
        """Seek and read frame ``index``; ``None`` (and no more seeking) when the landing is not exact."""
        import cv2

        self.cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = self.cap.read()
        landed = self.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 * self.fps
        if ok and abs(landed - index) < 0.5:
            self.position = index + 1
            return frame
        log.info("seek not frame-accurate, decoding sequentially", path=display_path(self.path), frame=index)
        self.can_seek = False
        self.restart()
        return None

    def advance_to(self, index: int) -> bool:
        """Skip (decode without converting) up to ``index``; False at the end of the stream."""
        failures = 0
        while self.position < index:
            failures = 0 if self.cap.grab() else failures + 1
            self.position += 1
            if failures >= END_OF_STREAM:
                return False
        return True


def iter_frames(path: str | os.PathLike, indices, *, seek: bool = True, limits=None) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, BGR frame)`` for each of ``indices`` that can be decoded, in order, one at a time.

    Only the frame being handed out is held, so memory does not grow with the number
    of frames or their size (a 7000x7000 frame is 147 MB). A decoded frame larger than
    ``limits.max_pixels`` (default: the environment's caps) is ``resolution_exceeds_limit``,
    whatever the header said.
    """
    from .limits import Limits

    max_pixels = (limits or Limits.from_env()).max_pixels
    wanted = sorted({int(i) for i in indices if int(i) >= 0})
    if not wanted:
        return
    with reading_media(path):
        cursor = _Cursor(path)
        if cursor.cap is None:
            return
        try:
            for index in wanted:
                if index < cursor.position:  # after a failed seek, only earlier frames can be behind us
                    cursor.restart()
                frame = None
                if seek and cursor.can_seek and index - cursor.position > SEQUENTIAL_GAP:
                    frame = cursor.seek(index)
                if frame is None:
                    if not cursor.advance_to(index):
                        break
                    ok, frame = cursor.cap.read()
                    cursor.position += 1
                    if not ok:
                        continue
                _check_pixels(path, frame, max_pixels)
                yield index, frame
        finally:
            cursor.cap.release()


def _check_pixels(path, frame: np.ndarray, max_pixels: int | None) -> None:
    if max_pixels is not None and frame.shape[0] * frame.shape[1] > max_pixels:
        raise MediaProcessingError(
            "resolution_exceeds_limit",
            f"{display_path(path)}: a decoded frame is {frame.shape[1]}x{frame.shape[0]}, over the limit of {max_pixels} pixels",
            path=path,
        )


def read_frames(path: str | os.PathLike, indices, *, seek: bool = True) -> dict[int, np.ndarray]:
    """The frames of :func:`iter_frames` in a dict (small requests only: every frame is held)."""
    return dict(iter_frames(path, indices, seek=seek))

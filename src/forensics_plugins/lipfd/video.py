"""Video: which frames LipFD looks at, and decoding only those.

The released code decodes every frame up to the last window with OpenCV; we
decode the same frames with the same decoder (so pixels are identical) but seek
to far-apart windows. A seek is trusted only when the decoded frames' timestamps
land exactly where a sequential decode would put them; otherwise the file is read
sequentially. Each frame is transformed (resized to 500x500, or cropped by a face
tracker) the moment it is decoded and only the result is kept, so memory grows
neither with the video's length nor with its resolution.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forensics_core.errors import MediaProcessingError, reading_media
from forensics_core.logs import get_logger

log = get_logger("forensics.lipfd.video")

#: Read forward instead of seeking when the next wanted frame is at most this far ahead.
SEQUENTIAL_GAP = 48
FRAME_SIZE = 500


def window_starts(frame_count: int, window_len: int, n_windows: int) -> list[int]:
    """``numpy.linspace(0, F-L-1, N)`` truncated, as the released code (without its uint8 wrap)."""
    last = frame_count - window_len - 1
    if last < 0:
        raise ValueError("too few frames")
    return np.linspace(0, last, n_windows).astype(np.int64).tolist()


def dense_starts(frame_count: int, window_len: int, stride: int) -> list[int]:
    """A window every ``stride`` frames from frame 0, while its frames exist (``start + L <= F``)."""
    if frame_count < window_len:
        raise ValueError("too few frames")
    return list(range(0, frame_count - window_len + 1, stride))


@dataclass
class FrameReadStats:
    seeks: int = 0
    frames_decoded: int = 0
    fallback: str | None = None
    notes: list[str] = field(default_factory=list)


#: Demuxers whose headers store the video stream's frame count, which OpenCV reports as
#: CAP_PROP_FRAME_COUNT. For every other container (Matroska/WebM, MPEG-TS, FLV, Ogg, raw
#: streams ...) OpenCV reports ``round(duration * fps)`` from the *container* duration: an
#: estimate that can exceed the real count (AAC priming, a longer audio track), so the last
#: window would ask for frames that do not exist.
COUNTED_FORMATS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "avi"})


class FrameReader:
    """OpenCV access to one video: frame count, fps, and the frames at given indices.

    ``frame_count`` is the container's stored count for mp4/mov/avi (what the released
    code reads); for other containers it is the number of video packets, counted by
    demuxing without decoding (:func:`forensics_core.media.probe` with ``exact=True``,
    which also applies the duration caps to the measured stream durations).
    ``container_frame_count`` keeps OpenCV's own figure. ``info`` (a probe of ``path``)
    and ``limits`` are optional; without ``info`` the file is probed here.
    """

    def __init__(self, path: os.PathLike | str, *, info=None, limits=None):
        import cv2

        self.path = os.fspath(path)
        self.limits = limits
        with reading_media(path):
            self.cap = cv2.VideoCapture(self.path, cv2.CAP_FFMPEG)
            if not self.cap.isOpened():
                raise MediaProcessingError("decode_failed", f"{self.path}: OpenCV could not open the video stream", path=path)
            self.fps = float(self.cap.get(cv2.CAP_PROP_FPS)) or 0.0
            self.container_frame_count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = self.container_frame_count
        self.frame_count_source = "container"
        self.position = 0  # index of the next frame a read() returns
        self.stats = FrameReadStats()
        try:
            self._count_packets_if_estimated(info, limits)
        except BaseException:
            self.cap.release()
            raise

    def _count_packets_if_estimated(self, info, limits) -> None:
        from forensics_core.media import probe

        if info is None:
            info = probe(self.path, limits=limits)
        if info.format_name in COUNTED_FORMATS or info.still_image or not info.has_video:
            return
        exact = info if info.exact else probe(self.path, limits=limits, exact=True)
        if exact.frame_count and exact.frame_count > 0:
            if exact.frame_count != self.container_frame_count:
                self.stats.notes.append(
                    f"the container gives no frame count (OpenCV estimates {self.container_frame_count}); "
                    f"{exact.frame_count} video packets counted"
                )
            self.frame_count = exact.frame_count
            self.frame_count_source = "packets"

    def close(self) -> None:
        self.cap.release()

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- low level -------------------------------------------------------------------
    def _read(self) -> np.ndarray | None:
        ok, frame = self.cap.read()
        if not ok:
            return None
        self.position += 1
        self.stats.frames_decoded += 1
        return frame

    def _skip_to(self, index: int) -> bool:
        while self.position < index:
            if not self.cap.grab():
                return False
            self.position += 1
            self.stats.frames_decoded += 1
        return True

    def _seek(self, index: int) -> None:
        import cv2

        self.cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        self.position = index
        self.stats.seeks += 1

    def _timestamp_ok(self, index: int) -> bool:
        """After a read, does the frame's timestamp say it is frame ``index``?"""
        import cv2

        if self.fps <= 0:
            return False
        msec = self.cap.get(cv2.CAP_PROP_POS_MSEC)
        return abs(msec / 1000.0 * self.fps - index) < 0.5

    def _restart(self) -> None:
        import cv2

        self.cap.release()
        self.cap = cv2.VideoCapture(self.path, cv2.CAP_FFMPEG)
        self.position = 0

    # -- public ----------------------------------------------------------------------
    def count_frames(self, limit: int) -> int:
        """Count frames by decoding (containers that do not store a count). Rewinds afterwards."""
        self._restart()
        n = 0
        while n < limit and self.cap.grab():
            n += 1
        self._restart()
        self.stats.notes.append("frame count obtained by decoding")
        return n

    def iter_frames(self, wanted: Iterable[int], seek: str = "auto",
                    transform: Callable[[int, np.ndarray], Any] | None = None) -> Iterator[tuple[int, Any]]:
        """``(index, transform(index, frame_bgr))`` for each wanted index, in increasing order.

        Each full-resolution frame is handed to ``transform`` as soon as it is decoded and
        dropped afterwards, so at most one decoded frame (plus OpenCV's own conversion
        buffer and the decoder's reference frames) is alive whatever the resolution.
        Stops early, without error, when the stream ends before a wanted frame (the
        caller decides: :meth:`read_windows` raises ``decode_failed``). Exceptions from
        decoding become ``decode_failed``; those of ``transform`` are its own.
        """
        transform = transform or resize_to_model
        for index, frame in self._decoded(sorted(set(wanted)), seek):
            self._check_pixels(frame)
            out = transform(index, frame)
            del frame
            yield index, out

    def _decoded(self, wanted: list[int], seek: str) -> Iterator[tuple[int, np.ndarray]]:
        use_seek = seek != "never"
        pending = iter(wanted)
        index = next(pending, None)
        with reading_media(self.path):
            while index is not None:
                if index < self.position:  # only after a failed seek: start again, sequentially
                    self._restart()
                far = index - self.position > SEQUENTIAL_GAP
                if use_seek and (far or seek == "always") and index != self.position:
                    self._seek(index)
                    frame = self._read()
                    if frame is None or not self._timestamp_ok(index):
                        if seek == "always":
                            raise MediaProcessingError("decode_failed", f"{self.path}: seeking to frame {index} failed", path=self.path)
                        self.stats.fallback = f"seek to frame {index} not frame-accurate; decoded sequentially"
                        log.info("seek not frame-accurate, decoding sequentially", path=self.path, frame=index)
                        use_seek = False
                        self._restart()
                        continue
                else:
                    if not self._skip_to(index):
                        return
                    frame = self._read()
                    if frame is None:
                        return
                yield index, frame
                del frame  # before the next decode: never two full-size frames of ours at once
                index = next(pending, None)

    def _check_pixels(self, frame: np.ndarray) -> None:
        """The resolution cap, on what is decoded (a stream may change size after its header)."""
        cap = self.limits.max_pixels if self.limits is not None else None
        if cap is not None and frame.shape[0] * frame.shape[1] > cap:
            raise MediaProcessingError(
                "resolution_exceeds_limit",
                f"{self.path}: a decoded frame is {frame.shape[1]}x{frame.shape[0]} ({frame.shape[0] * frame.shape[1]} pixels), "
                f"over the limit of {cap} pixels",
                path=self.path,
            )

    def read_windows(self, starts: list[int], window_len: int, seek: str = "auto",
                     transform: Callable[[int, np.ndarray], Any] | None = None) -> dict[int, Any]:
        """``transform(index, frame_bgr)`` of the frames ``start .. start+window_len-1`` of every window, keyed by index.

        ``transform`` defaults to :func:`resize_to_model` (500x500 INTER_LINEAR); it is
        called on each frame as it is decoded and only what it returns is kept.
        """
        wanted = sorted({s + k for s in starts for k in range(window_len)})
        frames = dict(self.iter_frames(wanted, seek, transform))
        missing = [w for w in wanted if w not in frames]
        if missing:
            raise MediaProcessingError(
                "decode_failed",
                f"{self.path}: frames {missing[0]}..{missing[-1]} could not be decoded (the container says {self.frame_count} frames)",
                path=self.path,
            )
        return frames


def resize_frame(frame_bgr: np.ndarray) -> np.ndarray:
    """500x500, OpenCV INTER_LINEAR, aspect ratio ignored (as the released preprocessing)."""
    import cv2

    return cv2.resize(frame_bgr, (FRAME_SIZE, FRAME_SIZE), interpolation=cv2.INTER_LINEAR)


def resize_to_model(index: int, frame_bgr: np.ndarray) -> np.ndarray:
    """The default frame transform: :func:`resize_frame` (``index`` unused)."""
    return resize_frame(frame_bgr)

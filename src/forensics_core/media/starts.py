"""When each stream starts: the first video frame's and the first audio sample's time.

Why: decoders hand out frames from the first one and audio from the first sample,
whatever their timestamps, so a track that starts 30 s after the picture (or before
it) is silently shifted by 30 s against the frames. Only the timestamps tell, and
container headers do not state them portably (``ffmpeg -i`` prints a stream's
``start`` in some versions only). So the first packets are demuxed (video, without
decoding) or the first audio frame decoded (the encoder's priming samples, which the
audio decoder outputs too, are then counted where they are played), with ffmpeg's
``framecrc`` muxer, one short process per stream.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from .ffmpeg import ffmpeg_input, run_ffmpeg

_TB_RE = re.compile(r"^#tb 0: (\d+)/(\d+)$", re.M)
_NOPTS = -(2**63)


@dataclass(frozen=True)
class StreamStarts:
    """Seconds on the container's timeline (``None``: no such stream, or no timestamp)."""

    video: float | None
    audio: float | None

    @property
    def audio_lead(self) -> float | None:
        """How much later the audio starts than the video (negative: earlier)."""
        if self.video is None or self.audio is None:
            return None
        return round(self.audio - self.video, 6)


def _first_time(path: str | os.PathLike[str], args: list[str], timeout: float) -> float | None:
    proc = run_ffmpeg(["-v", "error", "-i", ffmpeg_input(path), *args, "-f", "framecrc", "-"], path=path, timeout=timeout, check=False)
    text = proc.stdout.decode("ascii", errors="replace")
    m = _TB_RE.search(text)
    if proc.returncode != 0 or not m:
        return None
    tb = int(m.group(1)) / int(m.group(2))
    times = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        try:
            pts = int(fields[2])
        except (ValueError, IndexError):
            continue
        if pts != _NOPTS:
            times.append(pts * tb)
    return min(times) if times else None


def stream_starts(path: str | os.PathLike[str], *, timeout: float = 120.0, has_video: bool = True, has_audio: bool = True) -> StreamStarts:
    """The first presentation time of the default video stream and of the first audio stream.

    Video: the smallest timestamp among its first 8 packets (frames are stored in
    decoding order; with B-frames the first shown is not the first stored). Audio: the
    timestamp of its first decoded frame. Nothing is written; ``timeout`` bounds each
    ffmpeg process. A stream whose timestamps cannot be read gives ``None``.
    """
    video = _first_time(path, ["-map", "0:V:0", "-c", "copy", "-frames:v", "8"], timeout) if has_video else None
    audio = _first_time(path, ["-map", "0:a:0", "-frames:a", "1"], timeout) if has_audio else None
    return StreamStarts(video, audio)

"""``probe``: what a media file holds, from its headers (and, with ``exact``, its packets)."""
from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import MediaProcessingError
from .ffmpeg import ffmpeg_input, run_ffmpeg
from .limits import Limits, _finite, _limits
from .paths import validate_path
from .streams import (
    _IMAGE_FORMATS,
    _PLACEHOLDER,
    _ROTATE_TAG_RE,
    _ROTATION_RE,
    _channels,
    _classify_open_failure,
    _input_section,
    _split_top,
    _Stream,
    _streams,
)


@dataclass(frozen=True)
class MediaInfo:
    """What :func:`probe` learned about a media file from its headers.

    Attributes:
        path: absolute, resolved path.
        size_bytes: file size.
        format_name: ffmpeg's demuxer name, e.g. ``"mov,mp4,m4a,3gp,3g2,mj2"``,
            ``"matroska,webm"``, ``"png_pipe"``.
        has_video, has_audio: a video / audio stream exists. Cover art ("attached
            pic") is not video.
        width, height: coded size of the default video stream (before rotation; see
            ``rotation``).
        fps: the video stream's average frame rate as ffmpeg reports it (for variable
            frame rate video, the average). ``None`` for audio and still images.
        frame_count: estimated as ``int(duration * fps)``, exactly as moviepy does, so
            it is what moviepy-based decoders will expect (but at least 1). It uses the
            *container* duration, so it is too high when the video stream is shorter
            than the audio. ``None`` when the duration is unknown. 1 for a still image. With
            ``probe(exact=True)`` it is the real number of video packets.
        duration: container duration in seconds (the longest stream), ``None`` when the
            container does not state it (raw ``.h264``, streamed mkv, images).
        rotation: clockwise degrees (0, 90, 180, 270) to rotate the stored frame for
            display, i.e. the legacy ``rotate`` tag convention (portrait phone video is
            usually 90). ffmpeg applies it automatically when decoding, so decoded
            frames are ``height x width`` when rotation is 90 or 270.
        video_codec, audio_codec: ffmpeg codec names (``h264``, ``aac``, ``pcm_s16le``).
        pix_fmt: pixel format of the video stream (``yuv420p``, ``yuv420p10le``).
        audio_sample_rate: Hz. audio_channels: from the channel layout ffmpeg prints
            (``mono`` 1, ``stereo`` 2, ``5.1`` 6, ``N channels`` N ...).
        still_image: the file is a single image (png, jpeg, webp ... demuxed by an image
            demuxer). ``has_video`` stays true (decoders read it as one frame, with
            ``frame_count`` 1 and no duration/fps) but its ``modalities`` are ``{"image"}``:
            a detector that needs motion abstains on it.
        exact: ``True`` when produced by ``probe(exact=True)``: then ``frame_count`` is
            counted and ``video_duration`` / ``audio_duration`` are measured from packet
            timestamps (without decoding). Otherwise those two are ``None``.
    """

    path: Path
    size_bytes: int
    format_name: str | None
    has_video: bool
    has_audio: bool
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    frame_count: int | None = None
    duration: float | None = None
    rotation: int = 0
    video_codec: str | None = None
    audio_codec: str | None = None
    audio_sample_rate: int | None = None
    audio_channels: int | None = None
    pix_fmt: str | None = None
    still_image: bool = False
    exact: bool = False
    video_duration: float | None = None
    audio_duration: float | None = None

    @property
    def modalities(self) -> frozenset[str]:
        """What a detector can work with: ``{"image"}`` for a still image, else ``video`` and/or ``audio``.

        A still image is not a one-frame video: it has no motion, so a detector that
        needs video abstains on it (see :mod:`forensics_core.modalities`).
        """
        if self.still_image:
            return frozenset({"image"})
        return frozenset(m for m, present in (("video", self.has_video), ("audio", self.has_audio)) if present)

    @property
    def display_size(self) -> tuple[int, int] | None:
        """(width, height) after applying ``rotation``: the size of decoded frames."""
        if self.width is None or self.height is None:
            return None
        if self.rotation in (90, 270):
            return (self.height, self.width)
        return (self.width, self.height)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (path as str, modalities as a sorted list, no NaN/inf)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = os.fspath(value)
            elif isinstance(value, float) and not math.isfinite(value):
                value = None
            out[f.name] = value
        out["modalities"] = sorted(self.modalities)
        return out


def _measure(
    p: Path, video: _Stream | None, audio: _Stream | None, timeout: float, start: float | None
) -> dict[str, Any]:
    """Demux (no decoding) every packet of the chosen streams; count and time them.

    Uses ffmpeg's ``framecrc`` muxer on stdout with ``-c copy``: one text line per packet
    with its stream, dts, pts and duration. This reads the whole file but decodes
    nothing, so it is I/O bound. A stream's duration runs from its first timestamp to
    the end of its last packet; timestamps before the container's ``start`` (AAC/Opus
    encoder priming, which players skip) are not counted.
    """
    maps: list[str] = []
    chosen = [s for s in (video, audio) if s is not None]
    for s in chosen:
        maps += ["-map", f"0:{s.index}"]
    proc = run_ffmpeg(
        ["-v", "error", "-i", ffmpeg_input(p), *maps, "-c", "copy", "-f", "framecrc", "-"],
        path=p,
        timeout=timeout,
        check=True,
    )
    tbs: dict[int, float] = {}
    spans: dict[int, list[float]] = {}
    counts: dict[int, int] = {}
    nopts = -(2**63)
    for raw in proc.stdout.decode("ascii", errors="replace").splitlines():
        if raw.startswith("#tb "):
            m = re.match(r"#tb (\d+): (\d+)/(\d+)", raw)
            if m:
                tbs[int(m.group(1))] = int(m.group(2)) / int(m.group(3))
            continue
        if not raw or raw.startswith("#"):
            continue
        fields = [f.strip() for f in raw.split(",")]
        try:
            idx, dts, pts, dur = int(fields[0]), int(fields[1]), int(fields[2]), int(fields[3])
        except (ValueError, IndexError):
            continue
        ts = pts if pts != nopts else dts
        if ts == nopts:
            continue
        tb = tbs.get(idx, 0.0)
        t0, t1 = ts * tb, (ts + max(dur, 0)) * tb
        span = spans.setdefault(idx, [t0, t1])
        span[0], span[1] = min(span[0], t0), max(span[1], t1)
        counts[idx] = counts.get(idx, 0) + 1
    out: dict[str, Any] = {"exact": True}
    for out_idx, s in enumerate(chosen):
        dur = 0.0
        if out_idx in spans:
            lo, hi = spans[out_idx]
            if start is not None:
                lo = max(lo, start)
            dur = round(max(0.0, hi - lo), 6)
        if s is video:
            out["frame_count"] = counts.get(out_idx, 0)
            out["video_duration"] = dur
        else:
            out["audio_duration"] = dur
    return out


def _check_limits(p: Path, lim: Limits, width: int | None, height: int | None, durations: list[float | None]) -> None:
    known = [d for d in durations if d is not None]
    if lim.max_duration_s is not None and known and max(known) > lim.max_duration_s:
        raise MediaProcessingError(
            "duration_exceeds_limit",
            f"{p} lasts {max(known):.1f} s, over the limit of {lim.max_duration_s:g} s",
            path=p,
        )
    if lim.max_pixels is not None and width and height and width * height > lim.max_pixels:
        raise MediaProcessingError(
            "resolution_exceeds_limit",
            f"{p} is {width}x{height} ({width * height} pixels), over the limit of {lim.max_pixels} pixels",
            path=p,
        )


# --------------------------------------------------------------------------- probe


def probe(path: str | os.PathLike[str], *, limits: Limits | None = None, exact: bool = False) -> MediaInfo:
    """Validate ``path`` and read its stream layout from the headers (no decoding).

    Steps and why:

    1. :func:`validate_path` (missing, directory, empty, unreadable, too large) so that
       ffmpeg never sees a FIFO, a device or a 200 GB file.
    2. ``ffmpeg -i file:PATH`` via :func:`run_ffmpeg` (``limits.decode_timeout_s``).
       The input string is replaced by a placeholder in ffmpeg's output before parsing,
       so a file name containing newlines cannot inject fake ``Duration:`` or
       ``Stream`` lines.
    3. No ``Input #0`` section means ffmpeg could not open the file. It is run once
       more with ``-v debug`` to read the demuxer's probe score, and the failure is
       ``unsupported_format`` (nothing recognised the content, e.g. text or random
       bytes renamed ``.mp4``) or ``decode_failed`` (a recognised but damaged
       container, e.g. an mp4 cut before its ``moov`` atom); see
       :func:`_classify_open_failure`.
    4. The section is parsed with moviepy's ``FFmpegInfosParser`` after removing what it
       mishandles: cover art ("attached pic", which moviepy counts as video), stream
       groups (HEIF tiles, on which its regex crashes) and blank lines. A ``Duration:
       N/A`` container is parsed with ``check_duration=False`` (moviepy would raise);
       its duration and frame count are then ``None``. Any parser exception becomes
       ``decode_failed`` chained to it. Codec names, pixel format, channel count and
       rotation are read from the stream lines here, because moviepy does not return
       them; it also misses the rotation printed by newer ffmpeg (the bundled 9.x) as
       a ``Side data:`` / ``Display Matrix: rotation of -90.00 degrees`` block.
    5. A file with no audio and no video stream (subtitles only, data only) is
       ``unsupported_format``.
    6. A single image (image2 / ``*_pipe`` demuxers) is reported as video with
       ``still_image=True``, ``frame_count`` 1, ``fps`` and ``duration`` ``None``.
    7. With ``exact=True``, every packet of the default video/audio stream is demuxed
       (not decoded) to count frames and measure each stream's duration: slower
       (reads the whole file) but catches audio much shorter than video, or the
       reverse, which container headers hide.
    8. Limits: ``duration_exceeds_limit`` and ``resolution_exceeds_limit``.

    ``limits`` defaults to :meth:`Limits.from_env`.
    """
    lim = _limits(limits)
    p = validate_path(path, lim)
    try:
        size = p.stat().st_size
    except OSError as exc:  # removed since validate_path
        raise MediaProcessingError("file_not_found", f"{p} disappeared while being probed", path=p) from exc
    arg = ffmpeg_input(p)
    proc = run_ffmpeg(["-i", arg], path=p, timeout=lim.decode_timeout_s, check=False)
    stderr = proc.stderr.replace(os.fsencode(arg), _PLACEHOLDER).decode("utf-8", errors="replace")

    format_name, section = _input_section(stderr)
    if not section:
        debug = run_ffmpeg(["-v", "debug", "-i", arg], path=p, timeout=lim.decode_timeout_s, check=False)
        debug_text = debug.stderr.replace(os.fsencode(arg), _PLACEHOLDER).decode("utf-8", errors="replace")
        raise _classify_open_failure(p, stderr, debug_text)

    head, streams = _streams(section)
    kept = [s for s in streams if not s.attached_pic]
    if not any(s.kind in ("Video", "Audio") for s in kept):
        kinds = ", ".join(sorted({s.kind.lower() + (" (cover art)" if s.attached_pic else "") for s in streams})) or "none"
        raise MediaProcessingError(
            "unsupported_format",
            f"{p} ({format_name}) has no audio or video stream (streams: {kinds})",
            path=p,
        )

    duration_known = not any(ln.lstrip().startswith("Duration: N/A") for ln in head)
    text = "\n".join(head + [ln for s in kept for ln in s.lines])
    try:
        import warnings

        from moviepy.video.io.ffmpeg_reader import FFmpegInfosParser

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Subtitle stream parsing is not supported"
            info = FFmpegInfosParser(text, os.fspath(p), check_duration=duration_known).parse()
    except Exception as exc:  # noqa: BLE001 - any parser failure means the output is not what a decoder expects
        raise MediaProcessingError(
            "decode_failed", f"could not parse ffmpeg's description of {p}: {type(exc).__name__}: {exc}", path=p
        ) from exc

    by_index = {s.index: s for s in kept}
    video = by_index.get(info.get("default_video_stream_number", -1)) if info.get("video_found") else None
    audio = by_index.get(info.get("default_audio_stream_number", -1)) if info.get("audio_found") else None
    still = (
        video is not None
        and audio is None
        and format_name is not None
        and any(format_name == f or (f.startswith("_") and format_name.endswith(f)) for f in _IMAGE_FORMATS)
    )

    fields: dict[str, Any] = {
        "path": p,
        "size_bytes": size,
        "format_name": format_name,
        "has_video": video is not None,
        "has_audio": audio is not None,
        "duration": float(info["duration"]) if duration_known and info.get("duration") is not None else None,
        "still_image": still,
    }
    if video is not None:
        parts = _split_top(video.desc)
        size_wh = info.get("video_size")
        if size_wh:
            fields["width"], fields["height"] = int(size_wh[0]), int(size_wh[1])
        fields["video_codec"] = info.get("video_codec_name") or video.codec
        for part in parts[1:]:
            if re.match(r"\d+x\d+", part):
                break
            m = re.match(r"([a-z][a-z0-9_]*)(\(|$)", part)
            if m and m.group(1) != "none":
                fields["pix_fmt"] = m.group(1)
                break
        block = "\n".join(video.lines)
        m = _ROTATION_RE.search(block)
        if m:
            fields["rotation"] = int(round(-float(m.group(1)))) % 360
        else:
            m = _ROTATE_TAG_RE.search(block)
            if m:
                fields["rotation"] = int(round(float(m.group(1)))) % 360
        if still:
            fields["frame_count"] = 1
            fields["duration"] = None  # image2 reports one frame's worth (0.04 s); it has none
        else:
            fps = info.get("video_fps")
            fields["fps"] = float(fps) if _finite(fps) and fps > 0 else None
            if fields["duration"] is not None and fields["fps"] is not None:
                # at least 1: a video stream has a frame even if duration * fps < 1
                fields["frame_count"] = max(1, int(info.get("video_n_frames") or 0))
    if audio is not None:
        fields["audio_codec"] = audio.codec
        rate = info.get("audio_fps")
        fields["audio_sample_rate"] = int(rate) if isinstance(rate, int) else None
        parts = _split_top(audio.desc)
        for i, part in enumerate(parts):
            if part.endswith(" Hz") and i + 1 < len(parts):
                fields["audio_channels"] = _channels(parts[i + 1])
                break

    _check_limits(p, lim, fields.get("width"), fields.get("height"), [fields["duration"]])
    if exact:
        start = info.get("start")
        fields.update(_measure(p, video, audio, lim.decode_timeout_s, start if isinstance(start, float) else None))
        if still:
            fields["frame_count"], fields["video_duration"] = 1, None
        _check_limits(p, lim, None, None, [fields.get("video_duration"), fields.get("audio_duration")])
    result = MediaInfo(**fields)
    return result

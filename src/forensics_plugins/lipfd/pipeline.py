"""Preprocessing, end to end: media file -> window images (no model involved).

Kept apart from the detector so that the fidelity of every step can be checked
against the reference images without loading 1.7 GB of weights.
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field

import numpy as np

from forensics_core.errors import MediaProcessingError

from . import audio as audio_mod
from .framing import FramingPlan, WindowFace, cut_square, find_window_faces
from .options import LipFDOptions
from .video import FrameReader, resize_frame, window_starts
from .windows import WindowSpan, align, window_image

#: audio covering less than this fraction of the video (or more than its inverse) is an error
MISMATCH_ERROR_RATIO = 0.5
#: a difference above max(this many seconds, 10 %) is reported as a warning
MISMATCH_WARN_S = 0.5


@dataclass
class PreparedVideo:
    images: list[np.ndarray]  # BGR uint8 (1000, 500L, 3), one per unit
    spans: list[WindowSpan]  # every window
    units: list[tuple[int, WindowFace | None]]  # per image: its window, and the face it shows (framing.py)
    frame_count: int
    fps: float
    audio_seconds: float
    mel_rate: int
    media: dict
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    framing: FramingPlan | None = None
    faces: object | None = None  # forensics_core.media.faces.FaceTracks


class StageTimer:
    def __init__(self, timings: dict[str, float]):
        self.timings = timings

    @contextlib.contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0


def load_audio(path, options: LipFDOptions, limits) -> tuple[np.ndarray, int]:
    """The waveform the mel is computed from, at the mel rate the options resolve to."""
    from forensics_core.media import validate_path

    mel_rate = options.resolved("mel_sample_rate")
    if options.audio_path is not None:
        return audio_mod.load_wav(validate_path(options.audio_path, limits), sample_rate=mel_rate), mel_rate
    pcm = audio_mod.extract_pcm(path, sample_rate=options.audio_sample_rate, timeout=limits.decode_timeout_s)
    return audio_mod.resample(audio_mod.pcm_to_float(pcm), options.audio_sample_rate, mel_rate), mel_rate


def check_streams(path, audio_s: float, video_s: float, options: LipFDOptions, warnings: list[str]) -> None:
    """Audio far shorter or longer than the video misaligns every window: an error, or a warning."""
    ratio = audio_s / video_s
    message = f"the audio lasts {audio_s:.2f} s and the video {video_s:.2f} s; windows map audio to frames proportionally, so they are misaligned"
    if ratio < MISMATCH_ERROR_RATIO or ratio > 1 / MISMATCH_ERROR_RATIO:
        if not options.allow_stream_mismatch:
            raise MediaProcessingError("stream_mismatch", f"{path}: {message}", path=path)
        warnings.append(message)
    elif abs(audio_s - video_s) > max(MISMATCH_WARN_S, 0.1 * video_s):
        warnings.append(message)


def prepare(path: os.PathLike | str, options: LipFDOptions, limits=None) -> PreparedVideo:
    """Probe, decode the audio once and only the sampled frames, and build the window images."""
    from forensics_core.media import Limits, probe

    limits = limits or Limits.from_env()
    timings: dict[str, float] = {}
    stage = StageTimer(timings)
    warnings: list[str] = []
    L, N = options.window_len, options.n_extract

    with stage("probe"):
        info = probe(path, limits=limits)
    if not info.has_video:
        raise MediaProcessingError("no_video_stream", f"{path}: no video stream; LipFD compares lip movement with speech", path=path)
    if info.still_image:
        # before the audio check: with a separate WAV a single picture would still be too short
        raise MediaProcessingError("too_short", f"{path}: a single still image; LipFD needs at least window_len + 1 = {L + 1} video frames", path=path)
    if options.audio_path is None and not info.has_audio:
        raise MediaProcessingError("no_audio_track", f"{path}: no audio track; LipFD needs the speech that goes with the lips", path=path)

    with stage("open"):  # mkv, webm, ts ...: OpenCV's frame count is an estimate; packets are counted (video.py)
        reader = FrameReader(path, info=info, limits=limits)
    with reader:
        fps = reader.fps or (info.fps or 0.0)
        frame_count = reader.frame_count
        if frame_count <= 0:
            with stage("frame_count"):
                frame_count = reader.count_frames(limit=int((limits.max_duration_s or 4 * 3600) * max(fps, 1) * 2))
            warnings.append("the container stores no frame count; it was counted by decoding")
            reader.frame_count_source = "decoded"
            if limits.max_duration_s is not None and fps > 0 and frame_count / fps > limits.max_duration_s:
                raise MediaProcessingError(
                    "duration_exceeds_limit",
                    f"{path}: the video lasts at least {frame_count / fps:.1f} s, over the limit of {limits.max_duration_s:g} s",
                    path=path,
                )
        if frame_count < L + 1:
            raise MediaProcessingError("too_short", f"{path}: {frame_count} frames; LipFD needs at least window_len + 1 = {L + 1}", path=path)
        starts = window_starts(frame_count, L, N)
        if N > 1 and starts[1] - starts[0] < L:
            warnings.append(f"windows overlap: {frame_count} frames for {N} windows of {L} (the released code misaligns such clips; this one does not)")

        with stage("faces"):
            faces, framing = find_window_faces(path, starts, L, fps, options, warnings)
        units = framing.units(len(starts))
        media = {**info.to_dict(), "frame_count": frame_count, "frame_count_source": reader.frame_count_source, "fps": fps}
        if not units:  # face framing and no face in any window: nothing to score, nothing more to decode
            return PreparedVideo([], [], [], frame_count, fps, 0.0, options.resolved("mel_sample_rate"), media,
                                 warnings, timings, framing, faces)

        with stage("audio"):
            y, mel_rate = load_audio(path, options, limits)
        audio_s = len(y) / mel_rate
        if fps > 0:
            check_streams(path, audio_s, frame_count / fps, options, warnings)
        with stage("mel"):
            mel_rgba = audio_mod.mel_image(audio_mod.mel_db(y, mel_rate))
        del y
        spans = align(starts, frame_count, mel_rgba.shape[1], L)
        if any(s.mel_end <= s.mel_begin for s in spans):
            raise MediaProcessingError("too_short", f"{path}: the audio is too short to give every window a slice of the mel spectrogram", path=path)

        with stage("frame_decode"):
            raw = reader.read_windows(starts, L, options.seek)
        if reader.stats.fallback:
            warnings.append(reader.stats.fallback)
    with stage("window_build"):
        if framing.framing == "face":
            images = [window_image(mel_rgba, [cut_square(raw[spans[w].start_frame + k], wf.square) for k in range(L)], spans[w])
                      for w, wf in units]
        else:
            resized = {i: resize_frame(f) for i, f in raw.items()}
            images = [window_image(mel_rgba, [resized[s.start_frame + k] for k in range(L)], s) for s in spans]
        del raw
    media["audio_seconds"] = audio_s
    return PreparedVideo(images, spans, units, frame_count, fps, audio_s, mel_rate, media, warnings, timings, framing, faces)

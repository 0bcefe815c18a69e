"""Preprocessing, end to end: media file -> window images, a batch at a time (no model).

Kept apart from the detector so that the fidelity of every step can be checked
against the reference images without loading 1.7 GB of weights.

:func:`open_video` does what comes before the frames: probe, frame count, the caps
checked against what the streams hold (not only the header), where each stream
starts, the audio streamed into the mel power, the plan of windows.
:meth:`VideoWindows.batches` then decodes the wanted frames once, in order,
transforms each one as it is decoded (500x500 resize by default), builds a window's
image as soon as its last frame has arrived and hands the images over
``window_batch`` at a time. Alive at once: the mel power (80 MB per hour of audio;
with ``spread`` sampling only the windows' slices are kept), the frames of windows
not yet complete, one batch of images (7.5 MB each at L=5) and, with a prefetch
thread, the next batch.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forensics_core.errors import MediaProcessingError
from forensics_core.progress import StageTimer
from forensics_core.progress import current as current_progress

from . import audio as audio_mod
from .framing import FramingPlan, WindowFace, find_window_faces
from .options import LipFDOptions
from .video import FrameReader, dense_starts, window_starts
from .windows import WindowSpan, align, window_image

#: audio covering less than this fraction of the video (or more than its inverse) is an error
MISMATCH_ERROR_RATIO = 0.5
#: a difference above max(this many seconds, 10 %) is reported as a warning
MISMATCH_WARN_S = 0.5
#: audio that starts more than this before or after the first frame is put on the video's timeline
START_OFFSET_S = 0.1
#: a decoded duration above the header's by this factor (and 1 s) is reported: the header lies
HEADER_LIE_RATIO = 1.5


@dataclass
class WindowBatch:
    spans: list[WindowSpan]
    images: list[np.ndarray]  # BGR uint8 (1000, 500L, 3), one per span
    faces: list[WindowFace | None] = field(default_factory=list)  # the face each image shows (framing.py)


@dataclass
class PreparedVideo:
    images: list[np.ndarray]  # BGR uint8 (1000, 500L, 3), one per window (one per window and face, face framing)
    spans: list[WindowSpan]  # the span of each image
    frame_count: int
    fps: float
    audio_seconds: float
    mel_rate: int
    media: dict
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    faces: list[WindowFace | None] = field(default_factory=list)  # the face of each image
    framing: FramingPlan | None = None
    tracks: Any = None  # the host face stage's FaceTracks (None: not looked for)
    n_windows: int = 0  # every window planned, scored or not (face framing skips faceless ones)


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


def header_lies(header_s: float | None, decoded_s: float) -> bool:
    """A decoded duration grossly above the header's: the header cannot be trusted."""
    return bool(header_s) and decoded_s > header_s * HEADER_LIE_RATIO + 1.0


def offset_warning(lead: float) -> str:
    """Item 15: what a late or early audio track means, and what was done about it."""
    if lead > 0:
        return (f"the audio starts {lead:.2f} s after the first video frame; {lead:.2f} s of silence were put before it "
                "so that every window hears the sound played with its frames (windows before it hear silence)")
    return (f"the audio starts {-lead:.2f} s before the first video frame; its first {-lead:.2f} s (played before any "
            "frame) were dropped so that every window hears the sound played with its frames")


class VideoWindows:
    """One video, planned: its windows, their mel, and the frames still to decode (see the module doc)."""

    def __init__(self, path, options: LipFDOptions, reader: FrameReader, info, *, frame_count: int, fps: float,
                 spans: list[WindowSpan], mel: audio_mod.MelPower | None, mel_rate: int, audio_seconds: float,
                 media: dict, warnings: list[str], timings: dict[str, float], timer: StageTimer,
                 framing: FramingPlan, faces=None, n_windows: int | None = None):
        self.path, self.options, self.reader, self.info = path, options, reader, info
        self.framing, self.faces = framing, faces  # the plan, and the host's FaceTracks (None: not looked for)
        self.n_windows = len(spans) if n_windows is None else n_windows  # every window planned, scored or not
        self.units = {w: [] for w in range(self.n_windows)}
        for w, wf in framing.units(self.n_windows):
            self.units[w].append(wf)
        spans = [s for s in spans if self.units.get(s.index)]  # face framing: windows without a face are not decoded
        self.frame_count, self.fps, self.spans = frame_count, fps, spans
        self.mel_rate, self.audio_seconds = mel_rate, audio_seconds
        self.media, self.warnings, self.timings, self.timer = media, warnings, timings, timer
        self._active: Iterator[WindowBatch] | None = None
        if options.sampling == "spread":  # keep the windows' columns only: the whole power can be 300 MB
            self._slices: dict[int, np.ndarray] | None = {s.index: mel.rgba(s.mel_begin, s.mel_end) for s in spans}
            self.mel: audio_mod.MelPower | None = None
        else:
            self._slices, self.mel = None, mel

    @property
    def dense(self) -> bool:
        return self.options.sampling == "dense"

    def wanted_frames(self) -> list[int]:
        L = self.options.window_len
        return sorted({s.start_frame + k for s in self.spans for k in range(L)})

    def _mel_rgba(self, span: WindowSpan) -> np.ndarray:
        if self._slices is not None:
            return self._slices[span.index]
        assert self.mel is not None
        return self.mel.rgba(span.mel_begin, span.mel_end)

    def batches(self, size: int | None = None, *, transform: Callable[[int, np.ndarray], Any] | None = None,
                build: Callable[[np.ndarray, list[Any]], Any] | None = None, prefetch: int = 0,
                on_frame: Callable[[int], None] | None = None) -> Iterator[WindowBatch]:
        """Window images, ``size`` (default ``window_batch``) at a time, in frame order.

        ``transform(index, frame_bgr)`` is :meth:`FrameReader.iter_frames`'s hook (default:
        the 500x500 resize); ``build(mel_rgba_slice, transformed_frames)`` makes a window's
        image from what it returned (default :func:`window_image`). ``prefetch`` > 0 decodes
        and builds in a thread, that many batches ahead of the consumer (the model).
        ``on_frame(n)`` is told the position reached (frames 0..n-1 decoded or skipped),
        from that thread.
        """
        if transform is None:
            transform = self.framing.transform(self.spans, self.options.window_len)  # None: the 500x500 resize
        gen = self._batches(size or self.options.window_batch, transform, build or window_image, on_frame)
        if prefetch > 0:
            gen = _prefetched(gen, prefetch)
        self._active = gen
        return gen

    def _batches(self, size: int, transform, build, on_frame) -> Iterator[WindowBatch]:
        L, stage = self.options.window_len, self.timer
        order = sorted(self.spans, key=lambda s: (s.start_frame, s.index))
        frames: dict[int, Any] = {}
        k, last = 0, -1
        batch = WindowBatch([], [])
        items = self.reader.iter_frames(self.wanted_frames(), self.options.seek, transform)
        while True:
            with stage("frame_decode"):
                item = next(items, None)
            if item is None:
                break
            last, frame = item
            frames[last] = frame
            del frame
            if on_frame is not None:
                on_frame(last + 1)
            while k < len(order) and order[k].end_frame <= last:
                span = order[k]
                for wf in self.units[span.index]:  # one image per face (face framing), else one per window
                    with stage("window_build"):
                        shown = [frames[span.start_frame + j] for j in range(L)]
                        if self.framing.framing == "face":
                            shown = [f[(span.index, wf.track)] for f in shown]
                        image = build(self._mel_rgba(span), shown)
                    batch.spans.append(span)
                    batch.images.append(image)
                    batch.faces.append(wf)
                k += 1
                if k == len(order):  # every window has its image: before the last forward, free the mel and
                    self._slices, self.mel = None, None  # the decoder (FFmpeg's frame pools: ~0.5 GB at 7000x7000)
                    self.reader.close()
                if len(batch.spans) >= size:
                    yield batch
                    batch = WindowBatch([], [])
            keep = order[k].start_frame if k < len(order) else last + 1
            for index in [i for i in frames if i < keep]:
                del frames[index]
        if self.reader.stats.fallback and self.reader.stats.fallback not in self.warnings:
            self.warnings.append(self.reader.stats.fallback)
        if k < len(order):
            message = (f"decoding ended after frame {last} but the windows need frames up to {order[-1].end_frame} "
                       f"(the container says {self.frame_count} frames)")
            if not self.dense or k == 0:
                raise MediaProcessingError("decode_failed", f"{self.path}: {message}", path=self.path)
            self.warnings.append(f"{message}; the last {len(order) - k} windows were not analysed")
        if batch.spans:
            yield batch

    def close(self) -> None:
        if self._active is not None:
            self._active.close()  # stops a prefetch thread before its reader goes
            self._active = None
        self.reader.close()

    def __enter__(self) -> VideoWindows:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _prefetched(gen: Iterator[WindowBatch], depth: int) -> Iterator[WindowBatch]:
    """``gen`` run in a thread, at most ``depth`` items ahead; errors re-raised here; closing stops it."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for batch in gen:
                if not put(("batch", batch)):
                    return
            put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(("error", exc))
        finally:
            gen.close()

    thread = threading.Thread(target=contextvars.copy_context().run, args=(run,), name="lipfd-frames", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "batch":
                yield value
            elif kind == "end":
                return
            else:
                raise value
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                q.get_nowait()
        thread.join()


def _frame_count(path, reader: FrameReader, fps: float, limits, warnings: list[str], stage: StageTimer) -> int:
    frame_count = reader.frame_count
    if frame_count <= 0:
        with stage("frame_count"):
            frame_count = reader.count_frames(limit=int((limits.max_duration_s or 4 * 3600) * max(fps, 1) * 2))
        warnings.append("the container stores no frame count; it was counted by decoding")
        reader.frame_count_source = "decoded"
    return frame_count


def _check_video_duration(path, frame_count: int, fps: float, info, limits, warnings: list[str]) -> None:
    """The duration cap on what the stream holds (frames / fps), not only on the header."""
    if fps <= 0:
        return
    seconds = frame_count / fps
    said = f" (the header says {info.duration:.1f} s)" if info.duration else ""
    if limits.max_duration_s is not None and seconds > limits.max_duration_s:
        raise MediaProcessingError(
            "duration_exceeds_limit",
            f"{path}: the video holds {frame_count} frames at {fps:g} fps, {seconds:.1f} s{said}, over the limit of {limits.max_duration_s:g} s",
            path=path,
        )
    if header_lies(info.duration, seconds):
        warnings.append(f"the header says the media lasts {info.duration:.1f} s but the video holds {frame_count} frames "
                        f"({seconds:.1f} s at {fps:g} fps); the frames were used")


def _plan_starts(path, frame_count: int, options: LipFDOptions, warnings: list[str]) -> list[int]:
    L, N = options.window_len, options.n_extract
    if frame_count < L + 1:
        raise MediaProcessingError("too_short", f"{path}: {frame_count} frames; LipFD needs at least window_len + 1 = {L + 1}", path=path)
    if options.sampling == "dense":
        return dense_starts(frame_count, L, options.dense_stride)
    starts = window_starts(frame_count, L, N)
    if N > 1 and starts[1] - starts[0] < L:
        warnings.append(f"windows overlap: {frame_count} frames for {N} windows of {L} (the released code misaligns such clips; this one does not)")
    return starts


def _audio(path, info, options: LipFDOptions, limits, warnings: list[str], media: dict, stage: StageTimer):
    """(mel power, samples at the mel rate, mel rate), the track placed on the video's timeline."""
    from forensics_core.media import validate_path
    from forensics_core.media.starts import stream_starts

    progress = current_progress()
    mel_rate = options.resolved("mel_sample_rate")
    progress.stage("audio", total=round(info.duration, 1) if info.duration else None, unit="s")
    if options.audio_path is not None:
        with stage("audio"):
            mel, n = audio_mod.wav_mel(validate_path(options.audio_path, limits), mel_rate=mel_rate, timeout=limits.decode_timeout_s,
                                       max_duration_s=limits.max_duration_s, on_seconds=progress.advance)
        stage.add("audio", -mel.build_seconds)
        stage.add("mel", mel.build_seconds)
        return mel, n, mel_rate
    with stage("starts"):
        lead = stream_starts(path, timeout=limits.decode_timeout_s).audio_lead
    media["audio_lead_s"] = lead
    shift = lead if lead is not None and abs(lead) > START_OFFSET_S else 0.0
    if shift:
        warnings.append(offset_warning(shift))
    with stage("audio"):
        mel, n = audio_mod.stream_mel(path, sample_rate=options.audio_sample_rate, mel_rate=mel_rate, timeout=limits.decode_timeout_s,
                                      max_duration_s=limits.max_duration_s, header_s=info.duration, shift_s=shift,
                                      on_seconds=progress.advance)
    stage.add("audio", -mel.build_seconds)
    stage.add("mel", mel.build_seconds)
    decoded = n / mel_rate - shift
    if header_lies(info.duration, decoded):
        warnings.append(f"the header says the media lasts {info.duration:.1f} s but the audio track decodes to {decoded:.1f} s; "
                        "the decoded audio was used")
    return mel, n, mel_rate


def open_video(path: os.PathLike | str, options: LipFDOptions, limits=None) -> VideoWindows:
    """Everything before the frames (see the module doc). Close the result (``with``)."""
    from forensics_core.media import Limits, probe

    limits = limits or Limits.from_env()
    progress = current_progress()
    timings: dict[str, float] = {}
    stage = StageTimer(timings)
    warnings: list[str] = []
    L = options.window_len

    progress.stage("probe")
    with stage("probe"):
        info = probe(path, limits=limits)
    if not info.has_video:
        raise MediaProcessingError("no_video_stream", f"{path}: no video stream; LipFD compares lip movement with speech", path=path)
    if info.still_image:
        # before the audio check: with a separate WAV a single picture still has no motion (LipFD abstains)
        raise MediaProcessingError("still_image", f"{path}: a single still image; LipFD compares lip movement with speech", path=path)
    if options.audio_path is None and not info.has_audio:
        raise MediaProcessingError("no_audio_track", f"{path}: no audio track; LipFD needs the speech that goes with the lips", path=path)

    with stage("open"):  # mkv, webm, ts ...: OpenCV's frame count is an estimate; packets are counted (video.py)
        reader = FrameReader(path, info=info, limits=limits)
    try:
        fps = reader.fps or (info.fps or 0.0)
        frame_count = _frame_count(path, reader, fps, limits, warnings, stage)
        _check_video_duration(path, frame_count, fps, info, limits, warnings)
        starts = _plan_starts(path, frame_count, options, warnings)
        progress.stage("faces", total=len({f for s in starts for f in (s, s + L - 1)}), unit="frame")
        with stage("faces"):
            faces, framing = find_window_faces(path, starts, L, fps, options, warnings, on_frame=progress.advance)
        media: dict[str, Any] = {}
        if not framing.units(len(starts)):  # face framing and no face anywhere: nothing to score, no audio to decode
            media = {**info.to_dict(), "frame_count": frame_count, "frame_count_source": reader.frame_count_source, "fps": fps}
            return VideoWindows(path, options, reader, info, frame_count=frame_count, fps=fps, spans=[], mel=None,
                                mel_rate=options.resolved("mel_sample_rate"), audio_seconds=0.0, media=media,
                                warnings=warnings, timings=timings, timer=stage, framing=framing, faces=faces,
                                n_windows=len(starts))
        mel, n, mel_rate = _audio(path, info, options, limits, warnings, media, stage)
        audio_s = n / mel_rate
        if fps > 0:
            check_streams(path, audio_s, frame_count / fps, options, warnings)
        spans = align(starts, frame_count, mel.columns, L)
        if any(s.mel_end <= s.mel_begin for s in spans):
            raise MediaProcessingError("too_short", f"{path}: the audio is too short to give every window a slice of the mel spectrogram", path=path)
        media = {**info.to_dict(), "frame_count": frame_count, "frame_count_source": reader.frame_count_source,
                 "fps": fps, "audio_seconds": audio_s, **media}
        return VideoWindows(path, options, reader, info, frame_count=frame_count, fps=fps, spans=spans, mel=mel,
                            mel_rate=mel_rate, audio_seconds=audio_s, media=media, warnings=warnings, timings=timings, timer=stage,
                            framing=framing, faces=faces)
    except BaseException:
        reader.close()
        raise


def prepare(path: os.PathLike | str, options: LipFDOptions, limits=None) -> PreparedVideo:
    """Every window image at once (tests, reports): :func:`open_video` and one batch of all windows."""
    with open_video(path, options, limits) as video:
        images: list[np.ndarray] = []
        spans: list[WindowSpan] = []
        faces: list[WindowFace | None] = []
        for batch in video.batches(size=max(1, sum(len(u) for u in video.units.values()))):
            images += batch.images
            spans += batch.spans
            faces += batch.faces
        return PreparedVideo(images, spans, video.frame_count, video.fps, video.audio_seconds, video.mel_rate,
                             video.media, video.warnings, video.timings, faces, video.framing, video.faces, video.n_windows)

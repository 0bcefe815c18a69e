"""Deterministic detectors for tests and plugin authors: they read real media, need no weights.

``FakeDetector`` is visual-only (its score is the mean brightness of up to 8
decoded frames); ``AudioFakeDetector`` needs an audio track (its score comes
from the track's RMS level). Both are real ``Detector`` subclasses, registered
through the same plugin path as any other (see :func:`registered`).
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from pydantic import Field

from .detector import Detector, DetectorCard, DetectorOptions
from .errors import MediaProcessingError
from .hookspecs import hookimpl
from .results import DetectionResult, label_for
from .segments import segments_from_windows


class FakeOptions(DetectorOptions):
    frames: int = Field(8, ge=1, le=64, description="frames to read")
    stride: int = Field(1, ge=1, le=1000, description="read every stride-th frame (1: the first frames)")
    threshold: float = Field(0.5, gt=0, lt=1)


class FakeDetector(Detector):
    card = DetectorCard(id="FAKE-VISUAL", name="Fake visual detector", version="1.0.0",
                        summary="Deterministic test detector: mean brightness of the first frames.",
                        modalities=["video"], requirements=["a video stream"], containers=["mp4", "mkv", "mov", "webm", "avi"],
                        aliases=["FAKE"], options_schema=FakeOptions.model_json_schema(), license="MIT")
    Options = FakeOptions

    def _load(self, *, device, precision, weights=None, **kwargs) -> None:
        self.device, self.precision = "cpu", precision

    def _analyze(self, path: os.PathLike, options: FakeOptions) -> DetectionResult:
        import numpy as np

        from . import evidence_images as evidence

        capture = evidence.wanted()
        scores, windows, fps = [], [], 0.0
        for index, frame, fps in _frames(path, options.frames, options.stride):
            score = float(np.asarray(frame, dtype=np.float64).mean() / 255.0)
            k = len(scores)
            scores.append(score)
            windows.append({"index": k, "start_frame": index, "end_frame": index, "start_time": index / fps if fps else 0.0,
                            "end_time": (index + 1) / fps if fps else 0.0, "score": score,
                            "prediction": label_for(score, options.threshold)})
            if capture:  # the frame is at hand: no second decode for a report
                evidence.offer(self.card.id, path, [_frame_evidence(k, index, frame, score)])
        if not scores:
            raise MediaProcessingError("no_video_stream", f"{path}: no decodable video frames", path=path)
        score = sum(scores) / len(scores)
        return DetectionResult.scored(score=score, window_scores=scores, threshold=options.threshold,
                                      detector_id=self.card.id, detector_version=self.card.version,
                                      media_path=os.fspath(path), processing_time=0.0, frames_analyzed=len(scores),
                                      windows=windows, segments=segments_from_windows(windows, options.threshold),
                                      options=options.model_dump(mode="json"))

    def evidence(self, media_path, result, *, windows=None):
        """The decoded frame each window scored (the same decoder, so the same pixels)."""
        from .media import validate_path

        wins = result.get("windows") or []
        chosen = {w["start_frame"]: w["index"] for w in wins if windows is None or w["index"] in set(windows)}
        if not chosen:
            return []
        path = validate_path(media_path)
        return [_frame_evidence(chosen[i], i, frame)
                for i, frame, _ in _frames(path, max(chosen) + 1, 1) if i in chosen]


def _frames(path: os.PathLike, count: int, stride: int):
    """(frame index, BGR frame, fps) for frames 0, stride, 2*stride ... (``count`` of them), decoded in order."""
    import cv2

    cap = cv2.VideoCapture(os.fspath(path))
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS)) or 0.0
        index = kept = 0
        while kept < count:
            if index % stride:
                if not cap.grab():
                    return
            else:
                ok, frame = cap.read()
                if not ok:
                    return
                yield index, frame, fps
                kept += 1
            index += 1
    finally:
        cap.release()


def _frame_evidence(window_index: int, frame_index: int, frame, score: float | None = None):
    from .evidence_images import EvidenceImage

    return EvidenceImage(window_index=window_index, image=frame, caption=f"frame {frame_index}", kind="input", score=score)


class AudioFakeDetector(Detector):
    card = DetectorCard(id="FAKE-AUDIO", name="Fake audio detector", version="1.0.0",
                        summary="Deterministic test detector: RMS level of the audio track.",
                        modalities=["audio"], requirements=["an audio track"], containers=["mp4", "mkv", "wav"],
                        options_schema=DetectorOptions.model_json_schema(), license="MIT")

    def _load(self, *, device, precision, weights=None, **kwargs) -> None:
        self.device, self.precision = "cpu", precision

    def _analyze(self, path: os.PathLike, options: DetectorOptions) -> DetectionResult:
        import numpy as np

        from .media import ffmpeg_input, run_ffmpeg

        pcm = np.frombuffer(run_ffmpeg(["-v", "error", "-i", ffmpeg_input(path), "-vn", "-ac", "1", "-ar", "8000",
                                        "-f", "s16le", "pipe:1"], path=path, timeout=60).stdout, dtype="<i2")
        if pcm.size == 0:
            raise MediaProcessingError("no_audio_track", f"{path}: no audio track", path=path)
        rms = float(np.sqrt(np.mean((pcm.astype(np.float64) / 32768.0) ** 2)))
        score = min(1.0, rms * 2)
        return DetectionResult.scored(score=score, window_scores=[score], detector_id=self.card.id,
                                      detector_version=self.card.version, media_path=os.fspath(path), processing_time=0.0)


class _TestPlugin:
    def __init__(self, *classes: type[Detector]):
        self.classes = classes

    @hookimpl
    def register_detectors(self, register) -> None:
        for cls in self.classes:
            register(cls)


@contextlib.contextmanager
def registered(*classes: type[Detector], name: str = "forensics-testing") -> Iterator[None]:
    """Register detector classes as an in-process plugin for the duration of the block."""
    from .plugins import get_host

    host = get_host()
    status = host.register_plugin(_TestPlugin(*(classes or (FakeDetector, AudioFakeDetector))), name=name)
    if status.status != "ok":
        host.unregister_plugin(name)
        raise RuntimeError(status.error)
    try:
        yield
    finally:
        host.unregister_plugin(name)

"""Example plugin: scores a video by the mean brightness of its first frames.

Install it next to forensics (`pip install docs/examples/forensics-brightness`)
and it appears in `forensics models` as BRIGHTNESS-V1. It is a template, not a
forensic method.
"""
from __future__ import annotations

import os

from pydantic import Field

from forensics_core import DetectionResult, Detector, DetectorCard, DetectorOptions, MediaProcessingError, hookimpl


class BrightnessOptions(DetectorOptions):
    frames: int = Field(16, ge=1, le=256, description="how many frames to read from the start")


class BrightnessDetector(Detector):
    card = DetectorCard(
        id="BRIGHTNESS-V1", name="Brightness", version="0.1.0",
        summary="Template detector: mean brightness of the first frames.",
        modalities=["video"], requirements=["a video stream"], containers=["mp4", "mkv", "mov"],
        options_schema=BrightnessOptions.model_json_schema(), license="MIT",
    )
    Options = BrightnessOptions

    def _load(self, *, device, precision, weights=None, **kwargs):
        # Heavy imports and weights belong here, never at module level.
        self.device, self.precision = "cpu", precision

    def _analyze(self, path: os.PathLike, options: BrightnessOptions) -> DetectionResult:
        import cv2  # imported when media is processed, so `forensics models` stays fast

        cap = cv2.VideoCapture(os.fspath(path))
        scores = []
        try:
            while len(scores) < options.frames:
                ok, frame = cap.read()
                if not ok:
                    break
                scores.append(float(frame.mean()) / 255.0)
        finally:
            cap.release()
        if not scores:
            raise MediaProcessingError("no_video_stream", f"{path}: no decodable frames", path=path)
        return DetectionResult.scored(
            score=sum(scores) / len(scores), window_scores=scores, detector_id=self.card.id,
            detector_version=self.card.version, media_path=os.fspath(path), processing_time=0.0,
            frames_analyzed=len(scores),
        )


@hookimpl
def register_detectors(register):
    register(BrightnessDetector)

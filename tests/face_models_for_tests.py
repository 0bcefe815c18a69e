"""A second face model and a face-reading detector, real objects that the face-stage tests plug in.

* :class:`LargestOnly`: a face model selected by ``FORENSICS_FACE_MODEL=face_models_for_tests:LargestOnly``;
  it runs MTCNN and keeps the largest face, so a test can tell which model ran.
* :class:`FaceCountingDetector`: a detector that asks the host's face stage for the
  frames LIPFD-V1 would ask for and reports, in its result's options, how many frames
  the stage had to search for it (the rest came from the ensemble's shared cache).
"""
from __future__ import annotations

import os

import numpy as np

from forensics_core.detector import Detector, DetectorCard, DetectorOptions
from forensics_core.media.faces import Face, find_faces
from forensics_core.media.faces.mtcnn import MTCNN
from forensics_core.results import DetectionResult

FRAMES = 120
WINDOW_EDGES = sorted({f for s in np.linspace(0, FRAMES - 5 - 1, 10).astype(int) for f in (s, s + 4)})


class LargestOnly:
    name = "largest-only"

    def __init__(self) -> None:
        self.inner = MTCNN()

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        faces = self.inner.detect(image_bgr)
        return sorted(faces, key=lambda f: -f.width * f.height)[:1]


class FaceCountingDetector(Detector):
    card = DetectorCard(id="FACE-COUNT", name="Face counting test detector", version="1.0.0",
                        summary="Counts the faces the host's face stage finds; the score is the share of frames with a face.",
                        modalities=["video"], options_schema=DetectorOptions.model_json_schema(), license="MIT")

    def _load(self, *, device, precision, weights=None, **kwargs) -> None:
        self.device, self.precision = "cpu", precision

    def _analyze(self, path: os.PathLike, options: DetectorOptions) -> DetectionResult:
        result = find_faces(path, WINDOW_EDGES)
        share = sum(bool(result.faces_at(f)) for f in result.requested) / len(result.requested)
        return DetectionResult.scored(score=share, window_scores=[share], detector_id=self.card.id,
                                      detector_version=self.card.version, media_path=os.fspath(path), processing_time=0.0,
                                      options={"frames_searched_now": result.detected_now,
                                               "faces": [t.to_dict() for t in result.tracks]})

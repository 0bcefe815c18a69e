"""The host's face stage, shared by every detector (docs/faces.md).

* :mod:`.model`: :class:`Face` (box, 5 landmarks, score), the :class:`FaceModel`
  interface, and :func:`face_model` (which model runs: ``FORENSICS_FACE_MODEL``);
* :mod:`.mtcnn`: the default model, MTCNN on OpenCV's dnn;
* :mod:`.tracks`: detections linked into :class:`Track` objects with stable ids;
* :mod:`.stage`: :func:`find_faces` (frames a detector asks for, plus the bridge
  frames needed to follow each face) and :func:`face_cache` (one file's faces
  computed once for every detector of an ensemble or scan).

Importing this package is cheap: numpy only; OpenCV loads with the first model.
"""
from .model import ENV_VAR, FACE_MODELS, LANDMARKS, Face, FaceModel, face_model, model_name
from .stage import FaceTracks, detect_image, face_cache, file_identity, find_faces
from .tracks import Track, link

__all__ = [
    "ENV_VAR",
    "FACE_MODELS",
    "LANDMARKS",
    "Face",
    "FaceModel",
    "FaceTracks",
    "Track",
    "detect_image",
    "face_cache",
    "face_model",
    "file_identity",
    "find_faces",
    "link",
    "model_name",
]

"""What a face is, what a face model does, and which face model runs.

The interface is deliberately small so that a better model can replace the first
one: a face model is any object with a ``name`` and ``detect(image_bgr) ->
list[Face]``. It is chosen by name: ``FORENSICS_FACE_MODEL`` (default ``mtcnn``)
holds a registered name or a ``module:Class`` target whose class takes no
arguments. Models are built once per thread (OpenCV's dnn nets must not be
shared between threads) and reused for every file.
"""
from __future__ import annotations

import importlib
import os
import threading
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ...errors import FaceModelError

ENV_VAR = "FORENSICS_FACE_MODEL"
DEFAULT_MODEL = "mtcnn"
#: registered face models: name -> "module:Class"
FACE_MODELS: dict[str, str] = {"mtcnn": "forensics_core.media.faces.mtcnn:MTCNN"}
#: names of the 5 landmarks, in order (image-left first, as RetinaFace and MTCNN give them)
LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True, eq=False)
class Face:
    """One face in one image: ``box`` (x0, y0, x1, y1) and ``landmarks`` (5 x 2, x then y) in
    the image's pixels (continuous coordinates: pixel ``i`` spans ``[i, i+1)``), ``score`` in [0, 1]."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def size(self) -> float:
        """Geometric mean of width and height: one length to compare faces by."""
        return float(np.sqrt(max(self.width, 0.0) * max(self.height, 0.0)))

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)

    def to_dict(self) -> dict:
        return {"box": [round(v, 1) for v in self.box], "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks],
                "score": round(self.score, 4)}


@runtime_checkable
class FaceModel(Protocol):
    """Finds faces in one BGR uint8 image; each with a box, 5 landmarks and a score."""

    name: str

    def detect(self, image_bgr: np.ndarray) -> list[Face]: ...


def model_name(name: str | None = None) -> str:
    """The face model in force: ``name``, else ``$FORENSICS_FACE_MODEL``, else ``mtcnn``."""
    return name or os.environ.get(ENV_VAR, "").strip() or DEFAULT_MODEL


_local = threading.local()


def face_model(name: str | None = None) -> FaceModel:
    """This thread's instance of the face model called ``name`` (see :func:`model_name`)."""
    name = model_name(name)
    models = _local.__dict__.setdefault("models", {})
    if name not in models:
        models[name] = _build(name)
    return models[name]


def _build(name: str) -> FaceModel:
    target = FACE_MODELS.get(name, name)
    module_name, _, attr = target.partition(":")
    if not attr:
        raise FaceModelError(f"unknown face model {name!r}; known: {', '.join(sorted(FACE_MODELS))}",
                             hint=f"set {ENV_VAR} to one of those, or to 'module:Class' of your own model")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise FaceModelError(f"cannot import face model {target!r}: {exc}",
                             hint=f"install the package that provides {module_name!r}, or unset {ENV_VAR}") from exc
    model = cls()
    if not isinstance(model, FaceModel):
        raise FaceModelError(f"{target} is not a face model (it needs a 'name' and a 'detect(image_bgr)' method)")
    if not getattr(model, "name", None) or name not in FACE_MODELS:
        model.name = name  # a module:Class model is known by its target in results and caches
    return model

"""forensics: run media-forensics detectors side by side.

    >>> from forensics_core import load_model
    >>> model = load_model("LIPFD-V1", weights="ckpt.pth")
    >>> result = model.analyze("video.mp4")
    >>> result["prediction"], result["metrics"]["window_scores"]

Importing this package is cheap: torch and the media libraries load only when a
detector loads or media is processed.
"""
from __future__ import annotations

import os
from typing import Any

from .detector import Detector, DetectorCard, DetectorOptions
from .errors import (
    DetectorNotLoadedError,
    ForensicsError,
    InvalidOptionsError,
    MediaProcessingError,
    PluginLoadError,
    UnknownDetectorError,
    WeightsError,
)
from .hookspecs import hookimpl
from .results import DetectionResult

__version__ = "0.1.0"

__all__ = [
    "Detector", "DetectorCard", "DetectorOptions", "DetectionResult", "hookimpl",
    "ForensicsError", "MediaProcessingError", "WeightsError", "UnknownDetectorError",
    "InvalidOptionsError", "PluginLoadError", "DetectorNotLoadedError",
    "load_model", "get_detector", "list_models", "get_plugins", "probe", "scan", "evaluate",
]


def get_detector(detector_id: str) -> Detector:
    """An unloaded detector instance (cheap); call ``.load()`` before ``.analyze()``."""
    from .plugins import get_host

    return get_host().registry.get(detector_id).detector_class()()


def load_model(detector_id: str, **load_kwargs: Any) -> Detector:
    """Look up a detector by id or alias (case-insensitive) and load it.

    ``load_kwargs``: ``device`` ("auto", "cpu", "cuda"), ``precision`` ("fp32", "bf16",
    "fp16"), ``weights`` (a path; else the detector's environment variable, else the cache).
    """
    return get_detector(detector_id).load(**load_kwargs)


def list_models() -> list[dict[str, Any]]:
    """Every registered detector's card, as data. Imports no detector code."""
    from .plugins import get_host

    return [entry.to_dict() for entry in get_host().registry]


def get_plugins() -> list[dict[str, Any]]:
    """Each discovered plugin with its status (ok, failed, disabled) and detectors."""
    from .plugins import get_host

    return [status.to_dict() for status in get_host().statuses.values()]


def probe(path: str | os.PathLike):
    """Probe a media file (streams, fps, frame count, duration). See :mod:`forensics_core.media`."""
    from .media import probe as _probe

    return _probe(path)


def scan(*args: Any, **kwargs: Any):
    """Scan files or folders with one or more detectors. See :func:`forensics_core.batch.scan.scan`."""
    from .batch.scan import scan as _scan

    return _scan(*args, **kwargs)


def evaluate(*args: Any, **kwargs: Any):
    """Evaluate detectors on labelled media. See :func:`forensics_core.batch.evaluate.evaluate`."""
    from .batch.evaluate import evaluate as _evaluate

    return _evaluate(*args, **kwargs)

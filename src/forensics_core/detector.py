"""The detector interface: a card (capabilities as data), options, load/analyze/describe.

Constructors do no work; ``load`` is the only place a detector imports torch or
reads weights, and it is idempotent. ``analyze`` validates options and the path,
then calls the detector's ``_analyze``; exceptions that decoders throw are mapped
to ``MediaProcessingError(code="decode_failed")`` here, once, for every detector.
"""
from __future__ import annotations

import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import DetectorNotLoadedError, ForensicsError, InvalidOptionsError, as_media_error, is_decoder_exception
from .logs import bound_contextvars, get_logger
from .modalities import Modality
from .results import DetectionResult
from .weights import WeightsSource

if TYPE_CHECKING:
    from .evidence_images import EvidenceImage

log = get_logger("forensics.detector")

Device = str  # "auto" | "cpu" | "cuda" | "cuda:N"
Precision = Literal["fp32", "bf16", "fp16"]


class ScoreBands(BaseModel):
    """How strong a detector's score is as evidence: ``low`` below ``low``, ``high`` from ``high`` up.

    Between the two the score is ``uncertain``. Ensembles turn the bands into an
    evidence level ("substantial", "uncertain" or "little" evidence of manipulation).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    low: float = Field(gt=0.0, lt=1.0, description="scores below this are little evidence of manipulation")
    high: float = Field(gt=0.0, lt=1.0, description="scores at or above this are substantial evidence")

    @model_validator(mode="after")
    def _ordered(self) -> ScoreBands:
        if self.low > self.high:
            raise ValueError("score_bands.low must not exceed score_bands.high")
        return self

    def band(self, score: float) -> Literal["low", "uncertain", "high"]:
        if score >= self.high:
            return "high"
        return "low" if score < self.low else "uncertain"


#: bands for a card that gives none: the default threshold 0.5 with 0.2 either side
DEFAULT_SCORE_BANDS = ScoreBands(low=0.3, high=0.7)


class DetectorCard(BaseModel):
    """What a detector is and needs, readable without importing its code."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    version: str
    summary: str
    modalities: list[Modality]
    requirements: list[str] = Field(default_factory=list)
    containers: list[str] = Field(default_factory=list)
    aliases: list[str] = Field(default_factory=list)
    options_schema: dict[str, Any] = Field(default_factory=dict)
    weights: WeightsSource | None = None
    paper: str | None = None
    license: str | None = None
    entry: str | None = Field(default=None, description="'module:Class' that implements the detector")
    score_bands: ScoreBands | None = Field(default=None, description="score bands for ensemble evidence; None: the host default")
    looks_for: str | None = Field(default=None, description="the manipulation the detector looks for, in words (ensemble reasons)")


class DetectorOptions(BaseModel):
    """Base for per-detector options: a mistyped option fails loudly."""

    model_config = ConfigDict(extra="forbid")


def parse_options(options_cls: type[DetectorOptions], detector_id: str, values: dict[str, Any]) -> DetectorOptions:
    """Validate options; the error names the valid ones."""
    try:
        return options_cls(**values)
    except ValidationError as exc:
        valid = ", ".join(sorted(options_cls.model_fields))
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(options)'}: {e['msg']}" for e in exc.errors())
        raise InvalidOptionsError(
            f"invalid options for {detector_id}: {problems}",
            hint=f"valid options are: {valid}",
        ) from None


def resolve_device(device: str | None) -> str:
    """``auto`` picks CUDA when torch sees a GPU, else the CPU."""
    if device in (None, "auto"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class Detector(ABC):
    """Base class of every detector. Subclasses set ``card`` and ``Options``."""

    card: ClassVar[DetectorCard]
    Options: ClassVar[type[DetectorOptions]] = DetectorOptions

    def __init__(self) -> None:
        self._load_args: tuple[Any, ...] | None = None
        self._lock = threading.RLock()
        self.device: str | None = None
        self.precision: str | None = None

    # -- lifecycle -------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._load_args is not None

    def load(self, device: str = "auto", precision: str = "fp32", weights: str | os.PathLike | None = None, **kwargs: Any) -> Detector:
        """Load weights onto ``device``; a second call with the same arguments does nothing."""
        args = (device, precision, None if weights is None else os.fspath(weights), tuple(sorted(kwargs.items())))
        with self._lock:
            if self._load_args == args:
                return self
            if self._load_args is not None:
                self.unload()
            self._load(device=device, precision=precision, weights=weights, **kwargs)
            self._load_args = args
        return self

    def unload(self) -> None:
        with self._lock:
            self._unload()
            self._load_args = None

    @abstractmethod
    def _load(self, *, device: str, precision: str, weights: str | os.PathLike | None, **kwargs: Any) -> None: ...

    def _unload(self) -> None:  # pragma: no cover - trivial default
        pass

    # -- analysis --------------------------------------------------------------------
    def parse_options(self, **options: Any) -> DetectorOptions:
        return parse_options(self.Options, self.card.id, options)

    def analyze(self, media_path: str | os.PathLike, **options: Any) -> DetectionResult:
        """Analyse one file. Raises ``MediaProcessingError`` for media it cannot use."""
        from .media import validate_path

        opts = self.parse_options(**options)
        if not self.loaded:
            raise DetectorNotLoadedError(f"{self.card.id} is not loaded", hint="call .load() first, or use forensics_core.load_model()")
        with bound_contextvars(detector_id=self.card.id, media_path=os.fspath(media_path)):
            path = validate_path(media_path)
            started = time.perf_counter()
            try:
                result = self._analyze(path, opts)
            except ForensicsError:
                raise
            except Exception as exc:
                if is_decoder_exception(exc):
                    raise as_media_error(exc, path) from exc
                raise
            elapsed = time.perf_counter() - started
            log.info("analyzed", status=result.status, score=result.score, seconds=round(elapsed, 3))
        return result.model_copy(update={"processing_time": elapsed})

    @abstractmethod
    def _analyze(self, path: os.PathLike, options: DetectorOptions) -> DetectionResult: ...

    def evidence(self, media_path: str | os.PathLike, result: dict[str, Any], *,
                 windows: Sequence[int] | None = None) -> list[EvidenceImage]:
        """The images behind ``result``'s windows (``windows``: their indices; None = all), recomputed from the media.

        Optional (default: none). It must be deterministic, give the images the model
        read for exactly those windows (from the result's options and window fields),
        and work on an unloaded detector: no model and no weights. Reports call it
        for results computed earlier; see :mod:`forensics_core.evidence_images`.
        """
        return []

    def describe(self) -> dict[str, Any]:
        return {
            "card": self.card.model_dump(mode="json"),
            "options_schema": self.Options.model_json_schema(),
            "loaded": self.loaded,
            "device": self.device,
            "precision": self.precision,
        }

    def __repr__(self) -> str:
        state = f"loaded on {self.device}" if self.loaded else "not loaded"
        return f"<{type(self).__name__} {self.card.id} ({state})>"

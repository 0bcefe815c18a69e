"""The detector interface: a card (capabilities as data), options, load/analyze/describe.

Constructors do no work; ``load`` is the only place a detector imports torch or
reads weights, and it is idempotent. ``analyze`` validates options and the path,
then calls the detector's ``_analyze``; exceptions that decoders throw are mapped
to ``MediaProcessingError(code="decode_failed")`` here, once, for every detector.

One outcome for one input, whoever asks (the Python API, ``forensics analyze``,
``forensics scan``, ensembles): a file that lacks a modality the detector needs
(:data:`ABSTAIN_CODES`) gives an ``abstained`` result with that code, never an
error; errors are for files that are broken or unusable. ``media_path`` is always
:func:`~forensics_core.media.paths.canonical_path` of the input.
"""
from __future__ import annotations

import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import (
    DetectorNotLoadedError,
    ForensicsError,
    InvalidOptionsError,
    MediaProcessingError,
    as_media_error,
    is_decoder_exception,
)
from .logs import bound_contextvars, get_logger
from .media.paths import canonical_path, display_path, path_bytes_b64
from .modalities import ABSTAIN_REASONS, Modality
from .results import DetectionResult, WeightsInfo
from .weights import WeightsSource

#: Codes that mean "this detector cannot see what it needs in this file" rather than "the file
#: is broken": the detector abstains with the code and this sentence (:mod:`.modalities`). A
#: ``MediaProcessingError`` with one of these codes, raised by a detector, becomes that abstention.
ABSTAIN_CODES: dict[str, str] = ABSTAIN_REASONS
if TYPE_CHECKING:
    from .evidence_images import EvidenceImage

log = get_logger("forensics.detector")

Device = str  # "auto" | "cpu" | "cuda" | "cuda:N"
Precision = Literal["fp32", "bf16", "fp16", "auto"]


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


def cpu_has_native_bf16() -> bool:
    """Does this CPU compute bf16 natively (AVX512-BF16 or AMX), and does torch's oneDNN use it?
    Without both, bf16 on the CPU is emulated: several times slower than fp32."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            flags = set(next((line for line in fh if line.startswith("flags")), "").split())
    except OSError:
        return False
    if not flags & {"avx512_bf16", "amx_bf16"}:
        return False
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str | None, device: str) -> str:
    """``auto`` picks the fast mode the hardware runs natively: fp16 on CUDA, bf16 on a CPU
    with AVX512-BF16 or AMX, fp32 elsewhere. ``device`` is already resolved."""
    if precision in (None, "auto"):
        if device.startswith("cuda"):
            return "fp16"
        return "bf16" if device == "cpu" and cpu_has_native_bf16() else "fp32"
    return precision


#: precision name -> torch dtype name, for every detector with torch weights
PRECISION_DTYPES: dict[str, str] = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def resolve_runtime(device: str | None, precision: str | None, detector_id: str) -> tuple[str, str]:
    """The device and precision a detector loads with: ``auto`` resolved, impossible pairs refused
    with a hint, emulated bf16 warned about (one rule for every detector)."""
    import torch

    dev = resolve_device(device)
    precision = resolve_precision(precision, dev)
    if precision not in PRECISION_DTYPES:
        raise InvalidOptionsError(f"unknown precision {precision!r}", hint="use fp32, bf16, fp16 or auto")
    if precision == "fp16" and not dev.startswith("cuda"):
        raise InvalidOptionsError("fp16 runs on CUDA only", hint="use --precision bf16 on the CPU")
    if dev.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidOptionsError("device 'cuda' requested but torch sees no CUDA device", hint="use --device cpu or auto")
    if precision == "bf16" and dev == "cpu" and not cpu_has_native_bf16():
        # measured on an AVX2-only EPYC: about 8-10x slower than fp32 (docs/performance.md)
        log.warning("bf16 on a CPU without AVX512-BF16 or AMX is emulated and much slower than fp32; use fp32 here",
                    detector_id=detector_id)
    return dev, precision


def weights_info_beside(path: str | os.PathLike) -> Callable[[], WeightsInfo]:
    """Start hashing the weights file in a thread, beside the load; the returned call gives its
    :class:`WeightsInfo` (sha256 ``None`` when the file could not be read a second time)."""
    import concurrent.futures

    from .weights import weights_sha256

    hashing = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="weights-sha256")
    sha256 = hashing.submit(weights_sha256, path)
    hashing.shutdown(wait=False)

    def info() -> WeightsInfo:
        try:
            digest = sha256.result()
        except OSError:
            digest = None
        return WeightsInfo(path=os.path.realpath(path), sha256=digest, size=os.stat(path).st_size)

    return info


class Detector(ABC):
    """Base class of every detector. Subclasses set ``card`` and ``Options``."""

    card: ClassVar[DetectorCard]
    Options: ClassVar[type[DetectorOptions]] = DetectorOptions

    def __init__(self) -> None:
        self._load_args: tuple[Any, ...] | None = None
        self._lock = threading.RLock()
        self.device: str | None = None
        self.precision: str | None = None
        #: which weights are loaded (set by ``_load`` where there are weights); copied into every result
        self.weights_info: WeightsInfo | None = None

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
            from .weights.cache import keep_torch_caches_out_of_tmp

            keep_torch_caches_out_of_tmp()
            self._load(device=device, precision=precision, weights=weights, **kwargs)
            self._load_args = args
        return self

    @classmethod
    def weights_identity(cls, weights: str | os.PathLike | None = None) -> dict[str, Any] | None:
        """Which weights a ``load(weights=...)`` would read, cheaply (``stat``: path, size, mtime), or None.

        Part of a scan's resume key: a rerun with other weights redoes its files.
        """
        if weights is None and cls.card.weights is None:
            return None
        from .weights import resolve_weights, weights_identity

        try:
            identity = weights_identity(resolve_weights(cls.card.id, cls.card.weights, weights))
        except (ForensicsError, OSError):
            return None
        return {**identity, "path": display_path(identity["path"])}

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
        """Analyse one file: an ``ok`` result, or ``abstained`` when the file lacks a modality
        the detector needs (:data:`ABSTAIN_CODES`). Raises ``MediaProcessingError`` for media
        it cannot use (broken, too long, too short ...)."""
        from .media import validate_path

        opts = self.parse_options(**options)
        if not self.loaded:
            raise DetectorNotLoadedError(f"{self.card.id} is not loaded", hint="call .load() first, or use forensics_core.load_model()")
        with bound_contextvars(detector_id=self.card.id, media_path=display_path(media_path)):
            path = validate_path(media_path)
            started = time.perf_counter()
            try:
                result = self._analyze(path, opts)
            except MediaProcessingError as exc:
                if exc.code not in ABSTAIN_CODES:
                    raise
                log.info("abstained", code=exc.code, reason=exc.message)
                return self.abstained_result(path, exc.code, processing_time=time.perf_counter() - started)
            except ForensicsError:
                raise
            except Exception as exc:
                if is_decoder_exception(exc):
                    raise as_media_error(exc, path) from exc
                raise
            elapsed = time.perf_counter() - started
            log.info("analyzed", status=result.status, score=result.score, seconds=round(elapsed, 3))
        return self.finished(result, path, elapsed)

    def finished(self, result: DetectionResult, path: str | bytes | os.PathLike, seconds: float) -> DetectionResult:
        """``result`` as every path out of a detector gives it: the file named in one form (readable and
        lossless), the time it took, and the loaded weights' identity."""
        update: dict[str, Any] = {"processing_time": seconds, "media_path": display_path(path), "media_path_bytes": path_bytes_b64(path)}
        if result.weights is None and self.weights_info is not None:
            update["weights"] = self.weights_info
        return result.model_copy(update=update)

    def abstained_result(self, path: str | os.PathLike, code: str, *, reason: str | None = None, **fields: Any) -> DetectionResult:
        """The one ``abstained`` result for a file lacking what this detector needs (``code`` in :data:`ABSTAIN_CODES`)."""
        return DetectionResult.abstained(reason or ABSTAIN_CODES.get(code, code), code=code, detector_id=self.card.id,
                                         detector_version=self.card.version, media_path=canonical_path(path),
                                         weights=self.weights_info, **fields)

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
            "weights_path": self.weights_info.path if self.weights_info else None,
        }

    def __repr__(self) -> str:
        state = f"loaded on {self.device}" if self.loaded else "not loaded"
        return f"<{type(self).__name__} {self.card.id} ({state})>"

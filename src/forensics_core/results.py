"""The result schema every detector returns, and its normalisation.

One pydantic model for all detectors so that ensembles, scans and reports read
any detector's output the same way. The seed design's fields (``prediction``,
``confidence``, ``processing_time``, ``frames_analyzed``, ``frame_predictions``,
``metrics``) are kept verbatim; ``score`` is always P(fake) in [0, 1] or absent.
An abstained or failed run carries no score: never a 0.5 placeholder.

Every string in a result is valid UTF-8, whatever the file's name: a name that is not
UTF-8 is shown in ``media_path`` with ``\\xNN`` escapes and kept exactly, in base64, in
``media_path_bytes`` (see :mod:`forensics_core.media.paths`).
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .media.paths import clean_text, display_path, path_bytes_b64

SCHEMA_VERSION = "1.0"
DEFAULT_THRESHOLD = 0.5

Label = Literal["REAL", "FAKE"]
Status = Literal["ok", "abstained", "error"]


def label_for(score: float, threshold: float = DEFAULT_THRESHOLD) -> Label:
    """FAKE when ``score >= threshold`` (the released LipFD rule)."""
    return "FAKE" if score >= threshold else "REAL"


def confidence_for(score: float, threshold: float = DEFAULT_THRESHOLD) -> float:
    """The seed design's confidence: the score when FAKE, ``1 - score`` when REAL."""
    return score if score >= threshold else 1.0 - score


class FramePrediction(BaseModel):
    """One analysed unit. For LipFD a unit is a window (its index among the windows)."""

    model_config = ConfigDict(extra="forbid")
    index: int
    score: float = Field(ge=0.0, le=1.0)
    prediction: Label


class Metrics(BaseModel):
    model_config = ConfigDict(extra="forbid")
    final_average_score: float = Field(ge=0.0, le=1.0)
    window_scores: list[float]


class Window(BaseModel):
    """Where the evidence is: one analysed stretch of the media.

    Detectors may add documented fields (LipFD adds ``region_weights``).
    """

    model_config = ConfigDict(extra="allow")
    index: int
    start_frame: int
    end_frame: int = Field(description="last frame of the window, inclusive")
    start_time: float = Field(description="seconds")
    end_time: float = Field(description="seconds, end of the last frame")
    score: float = Field(ge=0.0, le=1.0)
    prediction: Label
    track: int | None = Field(default=None, description="the face track this window was analysed on (result['faces']); "
                              "None when no face was tracked in it or the detector does not look for faces")
    face_box: list[float] | None = Field(default=None, description="[x0, y0, x1, y1] of that face on the window's "
                                         "first frame, in source pixels of the displayed (rotation-applied) frame")


class FaceTrack(BaseModel):
    """One face followed through a video (the host's face stage), and what a detector concluded about it."""

    model_config = ConfigDict(extra="forbid")
    track: int = Field(description="stable id within the result: 0, 1, ... by first appearance, then left to right")
    score: float | None = Field(default=None, ge=0.0, le=1.0, description="P(fake) of this face; None when it was not analysed on its own")
    prediction: Label | None = None
    frames: list[int] = Field(default_factory=list, description="frames on which the face was detected")
    boxes: list[list[float]] = Field(default_factory=list, description="[x0, y0, x1, y1] per frame, source pixels")
    landmarks: list[list[list[float]]] = Field(default_factory=list, description="per frame, 5 [x, y] points: "
                                               "left eye, right eye, nose tip, left and right mouth corners (image-left first)")
    windows: list[int] = Field(default_factory=list, description="indices of the windows analysed on this face")


class ErrorInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str
    code: str
    message: str
    hint: str | None = None

    @field_validator("message", "hint")
    @classmethod
    def _utf8(cls, v: str | None) -> str | None:
        return None if v is None else clean_text(v)


class WeightsInfo(BaseModel):
    """Which weights gave a result: the file and its SHA-256 (recorded at download, or computed once)."""

    model_config = ConfigDict(extra="forbid")
    path: str
    sha256: str | None = Field(default=None, description="hex; None when it could not be read")
    size: int | None = None


def clean_strings(obj: Any) -> Any:
    """Every string inside ``obj`` (dicts, lists) made valid UTF-8 (:func:`clean_text`)."""
    if isinstance(obj, str):
        return clean_text(obj)
    if isinstance(obj, dict):
        return {clean_strings(k): clean_strings(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_strings(v) for v in obj]
    return obj


def lossless_media_path(data: Any) -> Any:
    """Before validation: a ``media_path`` that is not UTF-8 -> display form + ``media_path_bytes``."""
    if isinstance(data, dict) and isinstance(data.get("media_path"), str):
        raw = path_bytes_b64(data["media_path"])
        if raw is not None:
            data = {**data, "media_path": display_path(data["media_path"]), "media_path_bytes": raw}
    return data


class DetectionResult(BaseModel):
    """The outcome of one detector on one media file."""

    model_config = ConfigDict(extra="forbid")

    schema_version: str = SCHEMA_VERSION
    detector_id: str
    detector_version: str
    media_path: str = Field(description="absolute, symlinks resolved; names that are not UTF-8 shown with \\xNN escapes")
    media_path_bytes: str | None = Field(default=None, description="base64 of the exact file name bytes, when it is not UTF-8")
    status: Status
    prediction: Label | None = None
    score: float | None = Field(default=None, ge=0.0, le=1.0, description="P(fake)")
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    threshold: float = DEFAULT_THRESHOLD
    processing_time: float = Field(ge=0.0, description="seconds")
    frames_analyzed: int = 0
    frame_predictions: list[FramePrediction] = Field(default_factory=list)
    metrics: Metrics | None = None
    windows: list[Window] = Field(default_factory=list)
    segments: list[list[float]] = Field(
        default_factory=list,
        description=(
            "[start_s, end_s, score] per stretch judged fake, highest score first (the AV-Deepfake1M submission form): "
            "windows scored at or above the threshold, merged when the next starts at or before the previous one ends "
            "(in frames), each segment scored by the maximum of its windows (forensics_core.segments)"
        ),
    )
    abstain_reason: str | None = Field(default=None, description="why the detector abstained, for people")
    abstain_code: str | None = Field(default=None, description="why the detector abstained, for scripts: no_face, "
                                     "still_image, no_audio_track, no_video_stream, ...")
    error: ErrorInfo | None = None
    faces: list[FaceTrack] | None = Field(default=None, description="the face tracks the detector saw (None: it does not look for faces)")
    windows_with_face: int | None = Field(default=None, description="how many of the windows had a tracked face (None: not looked for)")
    warnings: list[str] = Field(default_factory=list)
    media: dict[str, Any] | None = None
    weights: WeightsInfo | None = None
    device: str | None = None
    precision: str | None = None
    timings: dict[str, float] = Field(default_factory=dict, description="seconds per stage")
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _lossless(cls, data: Any) -> Any:
        return lossless_media_path(data)

    @field_validator("warnings", "media", "options", "abstain_reason")
    @classmethod
    def _utf8(cls, v: Any) -> Any:
        return clean_strings(v)

    @model_validator(mode="after")
    def _consistent(self) -> DetectionResult:
        if self.status == "ok":
            if self.score is None or self.prediction is None or self.confidence is None:
                raise ValueError("an ok result needs score, prediction and confidence")
            if self.prediction != label_for(self.score, self.threshold):
                raise ValueError("prediction does not follow from score and threshold")
        else:
            if self.score is not None or self.prediction is not None or self.metrics is not None:
                raise ValueError(f"a {self.status} result carries no score, prediction or metrics")
            if self.status == "abstained" and not self.abstain_reason:
                raise ValueError("an abstained result needs abstain_reason")
            if self.status == "error" and self.error is None:
                raise ValueError("an error result needs error")
        return self

    # -- dict-style access, as the seed design's integration example uses ---------------
    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    def keys(self):
        return self.to_dict().keys()

    def __contains__(self, key: object) -> bool:
        return key in type(self).model_fields

    @classmethod
    def scored(cls, *, score: float, window_scores: list[float], threshold: float = DEFAULT_THRESHOLD,
               window_indices: list[int] | None = None, **fields: Any) -> DetectionResult:
        """Build an ``ok`` result from a video score and its per-unit scores (normalisation lives here).

        ``window_indices``: the units' indices when they are not 0, 1, 2 ... (windows left unscored).
        """
        indices = range(len(window_scores)) if window_indices is None else window_indices
        return cls(
            status="ok",
            score=score,
            prediction=label_for(score, threshold),
            confidence=confidence_for(score, threshold),
            threshold=threshold,
            frame_predictions=[
                FramePrediction(index=i, score=s, prediction=label_for(s, threshold)) for i, s in zip(indices, window_scores)
            ],
            metrics=Metrics(final_average_score=score, window_scores=list(window_scores)),
            **fields,
        )

    @classmethod
    def failed(cls, exc: BaseException, *, detector_id: str, detector_version: str, media_path: str, processing_time: float = 0.0) -> DetectionResult:
        """An ``error`` row for batch and ensemble runs; the exception's code and hint are kept."""
        if hasattr(exc, "to_dict"):
            info = exc.to_dict()  # type: ignore[attr-defined]
            err = ErrorInfo(type=info["type"], code=info["code"], message=info["message"], hint=info.get("hint"))
        else:
            err = ErrorInfo(type=type(exc).__name__, code="internal_error", message=str(exc) or type(exc).__name__)
        return cls(status="error", error=err, detector_id=detector_id, detector_version=detector_version,
                   media_path=media_path, processing_time=processing_time)

    @classmethod
    def abstained(cls, reason: str, *, detector_id: str, detector_version: str, media_path: str, code: str | None = None,
                  **fields: Any) -> DetectionResult:
        """No verdict: ``reason`` says why for people, ``code`` for scripts (never a placeholder score)."""
        return cls(status="abstained", abstain_reason=reason, abstain_code=code, detector_id=detector_id,
                   detector_version=detector_version, media_path=media_path, processing_time=fields.pop("processing_time", 0.0), **fields)


def result_json_schema() -> dict[str, Any]:
    """The JSON Schema that every result validates against (``forensics schema``)."""
    schema = DetectionResult.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "DetectionResult"
    return schema

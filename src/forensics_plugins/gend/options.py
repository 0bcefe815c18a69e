"""GEND-CLIP-L14 options. Defaults are the authors' recipe (README dataset preparation and app).

``crop_size="auto"`` is upstream's ``target_size=None`` (the crop's side follows the
face: the mean ratio of landmark distances to template distances, times the scale);
an integer is a fixed square, ``256`` being upstream's CLI default and the size of the
crops it ships. ``landmarks`` bypasses face detection for users with their own face
pipeline (and for the fidelity tests).
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, FiniteFloat, model_validator

from forensics_core.detector import DetectorOptions

Point = tuple[FiniteFloat, FiniteFloat]
FivePoints = Annotated[list[Point], Field(min_length=5, max_length=5)]


class GenDOptions(DetectorOptions):
    threshold: float = Field(0.5, gt=0.0, lt=1.0, description="FAKE when the mean p_fake >= threshold")
    num_frames: int = Field(32, ge=1, le=1024, description="faces analysed in a video: frames with a face, sampled from the "
                            "middle outwards (upstream at_least -n 32)")
    frames_tried: int | None = Field(None, ge=1, le=100_000, description="frames examined at most while looking for "
                                     "num_frames faces; None = 4 x num_frames (upstream tries every frame)")
    crop_size: Literal["auto"] | Annotated[int, Field(ge=16, le=2048)] = Field(
        "auto", description="side of the aligned crop: 'auto' follows the face (upstream target_size=None, the README "
        "recipe and the app), or a fixed size such as 256 (upstream CLI default)")
    scale: float = Field(1.3, ge=1.0, le=3.0, description="context around the face (upstream 1.3 everywhere)")
    landmarks: FivePoints | dict[int, FivePoints] | None = Field(
        None, description="bypass face detection: for an image 5 [x, y] points (left eye, right eye, nose tip, left "
        "mouth corner, right mouth corner; source pixels); for a video a mapping frame index -> 5 points, and those "
        "frames are the ones analysed")
    batch_size: int = Field(8, ge=1, le=256, description="faces per ViT forward call")

    @model_validator(mode="after")
    def _frames(self) -> GenDOptions:
        if isinstance(self.landmarks, dict) and any(k < 0 for k in self.landmarks):
            raise ValueError("landmarks: frame indices must be >= 0")
        if self.frames_tried is not None and self.frames_tried < self.num_frames:
            raise ValueError("frames_tried must be at least num_frames")
        return self

    @property
    def max_frames_tried(self) -> int:
        return self.frames_tried if self.frames_tried is not None else 4 * self.num_frames

"""LIPFD-V1 options. Profiles name the two preprocessing contracts; switches override them.

``profile="reference"`` (default) reproduces the preprocessing the published
checkpoint was trained with (see docs/lipfd.md and the reference README).
``profile="seed"`` follows the seed design's prose: a 16 kHz mel and one
distinct frame per full-scale crop. A switch left at ``None`` takes the
profile's value; setting it is a named, visible deviation.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from forensics_core.detector import DetectorOptions

PROFILES: dict[str, dict[str, object]] = {
    "reference": {"mel_sample_rate": 22050, "distinct_frame_crops": False},
    "seed": {"mel_sample_rate": 16000, "distinct_frame_crops": True},
}


class LipFDOptions(DetectorOptions):
    profile: Literal["reference", "seed"] = Field("reference", description="preprocessing contract: 'reference' = the published checkpoint's, 'seed' = the seed design's prose")
    audio_path: str | None = Field(None, description="a separate WAV (AVLips layout) instead of the container's audio track")
    window_len: int = Field(5, ge=1, le=32, description="frames per window (L)")
    n_extract: int = Field(10, ge=1, le=256, description="number of windows (N)")
    threshold: float = Field(0.5, gt=0.0, lt=1.0, description="FAKE when the mean window score >= threshold")
    audio_sample_rate: int = Field(16000, ge=4000, le=192000, description="rate the container's track is extracted at (ffmpeg -ac 1 -ar RATE pcm_s16le)")
    mel_sample_rate: int | None = Field(None, ge=4000, le=192000, description="rate of the mel spectrogram; None = profile (reference 22050, seed 16000)")
    distinct_frame_crops: bool | None = Field(None, description="full crop i from frame i (True) or the released loader's i:i+500 columns of frame 0 (False); None = profile")
    antialias: bool = Field(False, description="antialias the bilinear resizes (the checkpoint was trained without)")
    face_crop: tuple[int, int] = Field((28, 196), description="rows/cols of the 224 full crop kept for the face scale (0.75x)")
    lip_crop: tuple[int, int] = Field((61, 163), description="rows/cols of the 224 full crop kept for the lip scale (~0.455x)")
    seek: Literal["auto", "always", "never"] = Field("auto", description="frame access: seek to windows (verified) or decode sequentially")
    allow_stream_mismatch: bool = Field(False, description="analyse even when the audio covers far less than the video (a warning instead of an error)")
    batch_size: int | None = Field(None, ge=1, le=256, description="images per region-branch forward call; default 10 in fp32 (ResNet-50's CPU throughput peaks near 10), 25 in bf16/fp16 (smaller convolutions want more images)")
    sampling: Literal["spread", "dense"] = Field("spread", description="'spread': n_extract windows spread over the video (the released code); 'dense': a window every `stride` frames over the whole video")
    stride: int | None = Field(None, ge=1, le=100000, description="dense sampling: frames from one window's start to the next; None = window_len (windows that touch)")
    window_batch: int = Field(10, ge=1, le=256, description="windows decoded, built and run through the model together (about 25 MB each in flight); bounds memory")
    framing: Literal["auto", "full", "face"] = Field("auto", description="what each window shows: 'full' = the whole frame (the released preprocessing), "
                                                     "'face' = a square around each tracked face framed like the training clips, "
                                                     "'auto' = full when the face already sits there, else face; without a face, face/auto abstain (no_face)")
    max_faces: int = Field(4, ge=1, le=16, description="face tracks analysed on their own at most (framing face/auto); the video's score is the maximum over them")

    @model_validator(mode="after")
    def _crop_bounds(self) -> LipFDOptions:
        for name in ("face_crop", "lip_crop"):
            lo, hi = getattr(self, name)
            if not 0 <= lo < hi <= 224:
                raise ValueError(f"{name} must satisfy 0 <= start < stop <= 224")
        return self

    @property
    def dense_stride(self) -> int:
        """Frames between dense windows' starts: ``stride``, or ``window_len`` when unset."""
        return self.stride or self.window_len

    def resolved(self, name: str):
        """The value in force: the explicit switch, else the profile's."""
        value = getattr(self, name)
        return PROFILES[self.profile][name] if value is None else value

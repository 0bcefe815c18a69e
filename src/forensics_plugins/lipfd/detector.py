"""LIPFD-V1: the adapter between the host's Detector interface and the LipFD pipeline.

audio track -> mel image -> N windows of L frames -> 1000 x 500L window image ->
crops at 3 scales -> CLIP global feature + region-aware ResNet-50 -> window score
-> mean -> REAL/FAKE. Each stage lives in its own module; this one orders them,
times them and shapes the result.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any

import numpy as np

from forensics_core.detector import Detector, resolve_device
from forensics_core.errors import InvalidOptionsError, MediaProcessingError
from forensics_core.logs import get_logger
from forensics_core.manifest import builtin_manifest
from forensics_core.results import DetectionResult, label_for

from . import audio as audio_mod
from .options import LipFDOptions
from .video import FrameReader, resize_frame, window_starts
from .windows import align, window_image, window_tensors

log = get_logger("forensics.lipfd")

DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
#: audio covering less than this fraction of the video (or more than its inverse) is an error
MISMATCH_ERROR_RATIO = 0.5
#: a difference above max(this many seconds, 10 %) is reported as a warning
MISMATCH_WARN_S = 0.5


class LipFDDetector(Detector):
    card = builtin_manifest().card("LIPFD-V1")
    Options = LipFDOptions

    def __init__(self) -> None:
        super().__init__()
        self.net = None
        self.weights_path: str | None = None
        self._infer_lock = threading.Lock()  # one forward at a time; decoding runs in parallel

    # -- loading ---------------------------------------------------------------------
    def _load(self, *, device: str, precision: str, weights=None, arch: str = "ViT-L/14", threads: int | None = None) -> None:
        import torch

        from forensics_core.weights import resolve_weights

        from .model import LipFDNet
        from .weights import check_compatible, read_state_dict, to_model_keys

        if precision not in DTYPES:
            raise InvalidOptionsError(f"unknown precision {precision!r}", hint="use fp32, bf16 or fp16")
        dev = resolve_device(device)
        if precision == "fp16" and not dev.startswith("cuda"):
            raise InvalidOptionsError("fp16 runs on CUDA only", hint="use --precision bf16 on the CPU")
        if dev.startswith("cuda") and not torch.cuda.is_available():
            raise InvalidOptionsError("device 'cuda' requested but torch sees no CUDA device", hint="use --device cpu or auto")
        if threads:
            torch.set_num_threads(threads)
        path = resolve_weights(self.card.id, self.card.weights, weights)
        state = to_model_keys(read_state_dict(path))
        with torch.device("meta"):  # no random initialisation, no second copy of the weights
            net = LipFDNet(arch)
        check_compatible(net, state, path)
        net.load_state_dict(state, strict=True, assign=True)
        net.eval().requires_grad_(False)
        if precision != "fp32":
            dtype = getattr(torch, DTYPES[precision])
            net.encoder.to(dtype)
            net.backbone.to(dtype)
            net.backbone.get_weight.float()  # the small heads stay in fp32
            net.backbone.fc.float()
        net.backbone.to(memory_format=torch.channels_last)
        self.net = net.to(dev)
        self.device, self.precision, self.weights_path = dev, precision, os.fspath(path)
        log.info("loaded", detector_id=self.card.id, device=dev, precision=precision, weights=self.weights_path)

    def _unload(self) -> None:
        self.net = None

    # -- analysis --------------------------------------------------------------------
    def _analyze(self, path: os.PathLike, options: LipFDOptions) -> DetectionResult:
        from forensics_core.media import Limits, probe, validate_path

        timings: dict[str, float] = {}
        warnings: list[str] = []

        @contextlib.contextmanager
        def stage(name: str):
            t0 = time.perf_counter()
            yield
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0

        L, N = options.window_len, options.n_extract
        limits = Limits.from_env()
        with stage("probe"):
            info = probe(path, limits=limits)
        if not info.has_video:
            raise MediaProcessingError("no_video_stream", f"{path}: no video stream; LipFD compares lip movement with speech", path=path)
        if options.audio_path is None and not info.has_audio:
            raise MediaProcessingError("no_audio_track", f"{path}: no audio track; LipFD needs the speech that goes with the lips", path=path)

        with FrameReader(path) as reader:
            fps = reader.fps or (info.fps or 0.0)
            frame_count = reader.frame_count
            if frame_count <= 0:
                with stage("frame_count"):
                    frame_count = reader.count_frames(limit=int((limits.max_duration_s or 4 * 3600) * max(fps, 1) * 2))
                warnings.append("the container stores no frame count; it was counted by decoding")
            if frame_count < L + 1:
                raise MediaProcessingError("too_short", f"{path}: {frame_count} frames; LipFD needs at least window_len + 1 = {L + 1}", path=path)
            starts = window_starts(frame_count, L, N)
            if N > 1 and starts[1] - starts[0] < L:
                warnings.append(f"windows overlap: {frame_count} frames for {N} windows of {L} (the released code misaligns such clips; this one does not)")

            with stage("audio"):
                mel_rate = options.resolved("mel_sample_rate")
                if options.audio_path is not None:
                    wav = validate_path(options.audio_path, limits)
                    y = audio_mod.load_wav(wav, sample_rate=mel_rate)
                else:
                    pcm = audio_mod.extract_pcm(path, sample_rate=options.audio_sample_rate, timeout=limits.decode_timeout_s)
                    y = audio_mod.resample(audio_mod.pcm_to_float(pcm), options.audio_sample_rate, mel_rate)
            audio_s, video_s = len(y) / mel_rate, (frame_count / fps if fps > 0 else None)
            if video_s:
                self._check_streams(path, audio_s, video_s, options, warnings)

            with stage("mel"):
                mel_rgba = audio_mod.mel_image(audio_mod.mel_db(y, mel_rate))
            spans = align(starts, frame_count, mel_rgba.shape[1], L)
            if any(s.mel_end <= s.mel_begin for s in spans):
                raise MediaProcessingError("too_short", f"{path}: the audio is too short to give every window a slice of the mel spectrogram", path=path)

            with stage("frame_decode"):
                raw = reader.read_windows(starts, L, options.seek)
            if reader.stats.fallback:
                warnings.append(reader.stats.fallback)
        with stage("window_build"):
            resized = {i: resize_frame(f) for i, f in raw.items()}
            del raw
            images = [window_image(mel_rgba, [resized[s.start_frame + k] for k in range(L)], s) for s in spans]
            global_in, crops = window_tensors(
                images, window_len=L, distinct_frame_crops=options.resolved("distinct_frame_crops"),
                antialias=options.antialias, face_crop=options.face_crop, lip_crop=options.lip_crop)
            del images, resized
        logits, weights, timings_model = self._infer(global_in, crops, options.batch_size)
        timings.update(timings_model)

        scores = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        score = float(np.mean(scores))
        threshold = options.threshold
        windows = [
            {
                "index": s.index, "start_frame": s.start_frame, "end_frame": s.end_frame,
                "start_time": s.start_frame / fps if fps else 0.0, "end_time": (s.start_frame + L) / fps if fps else 0.0,
                "score": float(scores[s.index]), "prediction": label_for(float(scores[s.index]), threshold),
                "logit": float(logits[s.index]), "mel_columns": [s.mel_begin, s.mel_end],
                "region_weights": {name: [float(v) for v in weights[s.index, :, j]] for j, name in enumerate(("full", "face", "lip"))},
            }
            for s in spans
        ]
        return DetectionResult.scored(
            score=score, window_scores=[float(v) for v in scores], threshold=threshold,
            detector_id=self.card.id, detector_version=self.card.version, media_path=os.fspath(path),
            processing_time=sum(timings.values()), frames_analyzed=len({f for s in spans for f in range(s.start_frame, s.end_frame + 1)}),
            windows=windows, warnings=warnings, device=self.device, precision=self.precision, timings=timings,
            media={**info.to_dict(), "frame_count": frame_count, "fps": fps, "audio_seconds": audio_s},
            options={**options.model_dump(mode="json"), "mel_sample_rate": mel_rate,
                     "distinct_frame_crops": options.resolved("distinct_frame_crops")},
        )

    @staticmethod
    def _check_streams(path, audio_s: float, video_s: float, options: LipFDOptions, warnings: list[str]) -> None:
        ratio = audio_s / video_s
        message = f"the audio lasts {audio_s:.2f} s and the video {video_s:.2f} s; windows map audio to frames proportionally, so they are misaligned"
        if ratio < MISMATCH_ERROR_RATIO or ratio > 1 / MISMATCH_ERROR_RATIO:
            if not options.allow_stream_mismatch:
                raise MediaProcessingError("stream_mismatch", f"{path}: {message}", path=path)
            warnings.append(message)
        elif abs(audio_s - video_s) > max(MISMATCH_WARN_S, 0.1 * video_s):
            warnings.append(message)

    def _infer(self, global_in, crops, chunk: int):
        import torch

        net = self.net
        timings = {}
        with self._infer_lock, torch.inference_mode():
            t0 = time.perf_counter()
            g = net.global_features(global_in.to(self.device, non_blocking=True))
            t1 = time.perf_counter()
            feats = net.crop_features(crops.to(self.device, non_blocking=True), chunk)
            logits, weights = net.backbone.heads(feats, g)
            logits, weights = logits.float().cpu().numpy(), weights.float().cpu().numpy()
            t2 = time.perf_counter()
        timings["global_branch"], timings["region_branch"] = t1 - t0, t2 - t1
        return logits, weights, timings

    @staticmethod
    def convert_weights(checkpoint: str | os.PathLike, output: str | os.PathLike) -> dict[str, Any]:
        """``forensics convert LIPFD-V1 CKPT OUT.safetensors``: keep only what inference needs."""
        from .weights import convert

        return convert(checkpoint, output)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "weights_path": self.weights_path}

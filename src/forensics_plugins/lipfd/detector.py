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

from forensics_core import evidence_images
from forensics_core.detector import PRECISION_DTYPES, Detector, resolve_runtime, weights_info_beside
from forensics_core.logs import get_logger
from forensics_core.manifest import builtin_manifest
from forensics_core.progress import current as current_progress
from forensics_core.results import DetectionResult, label_for
from forensics_core.segments import segments_from_windows

from .evidence import offer_batch
from .options import LipFDOptions
from .pipeline import open_video
from .verdicts import decide, face_tracks, window_fields
from .windows import SCALES, window_tensors

log = get_logger("forensics.lipfd")


class _FrameProgress:
    """``on_frame`` for the pipeline: frames decoded (spread) or the position reached (dense)."""

    def __init__(self, progress, *, by_position: bool):
        self.progress, self.by_position = progress, by_position
        self.active, self.reached = True, 0

    def __call__(self, position: int) -> None:
        if self.active:
            self.progress.advance(position - self.reached if self.by_position else 1)
        self.reached = position


class LipFDDetector(Detector):
    card = builtin_manifest().card("LIPFD-V1")
    Options = LipFDOptions

    def __init__(self) -> None:
        super().__init__()
        self.net = None
        self._infer_lock = threading.Lock()  # one forward at a time; decoding runs in parallel

    # -- loading ---------------------------------------------------------------------
    def _load(self, *, device: str, precision: str, weights=None, arch: str = "ViT-L/14", threads: int | None = None) -> None:
        import torch

        from forensics_core.weights import resolve_weights

        from .model import LipFDNet
        from .weights import check_compatible, check_finite, read_state_dict, to_model_keys

        dev, precision = resolve_runtime(device, precision, self.card.id)
        if threads:
            torch.set_num_threads(threads)
        path = resolve_weights(self.card.id, self.card.weights, weights)
        weights_info = weights_info_beside(path)  # the sha256 for every result: recorded, else hashed beside the load
        state = to_model_keys(read_state_dict(path))
        with torch.device("meta"):  # no random initialisation, no second copy of the weights
            net = LipFDNet(arch)
        check_compatible(net, state, path)
        check_finite(state, path)  # NaN weights would load, then fail every file after a full analysis
        net.load_state_dict(state, strict=True, assign=True)
        del state
        # eval, no grad, BatchNorm and QuickGELU folded, towers converted once to the precision's dtype
        net.prepare(getattr(torch, PRECISION_DTYPES[precision]))
        if dev == "cpu":
            net.backbone.pack_for_cpu()  # oneDNN's weight layout, once (the fused path reads it)
        else:  # cuDNN wants channels-last
            net.backbone.to(memory_format=torch.channels_last)
        self.net = net.to(dev)
        self.device, self.precision = dev, precision
        self.weights_info = weights_info()
        log.info("loaded", detector_id=self.card.id, device=dev, precision=precision, weights=self.weights_info.path)

    def _unload(self) -> None:
        self.net = None
        self.weights_info = None

    @staticmethod
    def check_weights(path: str | os.PathLike) -> None:
        """`forensics pull`'s check of a download before it enters the cache (keys, shapes, finite; meta device)."""
        from .weights import check_checkpoint

        check_checkpoint(path)

    # -- analysis --------------------------------------------------------------------
    def _analyze(self, path: os.PathLike, options: LipFDOptions) -> DetectionResult:
        """Windows flow from the pipeline a batch at a time; each batch goes through the model.

        ``spread``: usually one batch of ``n_extract`` windows (times the faces analysed).
        ``dense``: a decoding thread keeps one batch ready while the model runs the current
        one, so memory holds two batches whatever the video's length; progress counts frames.
        Before any frame is decoded, the host's face stage finds the faces of every window
        and the framing is decided (framing.py); without a face, face/auto framing abstains.
        """
        progress = current_progress()
        dense = options.sampling == "dense"
        L = options.window_len
        rows: list[dict[str, Any]] = []
        with open_video(path, options) as video:
            timer, fps, threshold, framing = video.timer, video.fps, options.threshold, video.framing
            if not video.spans:
                return self.no_face_result(path, options, n_windows=video.n_windows, faces=video.faces, framing=framing,
                                           warnings=video.warnings, media=video.media, timings=video.timings)
            if dense:
                progress.stage("frames+model", total=video.frame_count, unit="frame")
            else:
                progress.stage("frames", total=len(video.wanted_frames()), unit="frame")
            frames_seen = _FrameProgress(progress, by_position=dense)
            for i, batch in enumerate(video.batches(prefetch=1 if dense else 0, on_frame=frames_seen)):
                if i == 0 and not dense:
                    frames_seen.active = False
                    progress.stage("model", total=sum(len(u) for u in video.units.values()), unit="window")
                with timer("window_build"):
                    global_in, crops = window_tensors(
                        batch.images, window_len=L, distinct_frame_crops=options.resolved("distinct_frame_crops"),
                        antialias=options.antialias, face_crop=options.face_crop, lip_crop=options.lip_crop,
                        global_stem=self._stem)
                keep = evidence_images.wanted()  # a report is being made: offer the images once scored
                if not keep:
                    batch.images.clear()
                logits, weights, timings_model = self._infer(global_in, crops, self.region_batch(options))
                del global_in, crops
                for name, seconds in timings_model.items():
                    timer.add(name, seconds)
                scores = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
                if keep:
                    offer_batch(self.card.id, path, batch.spans, batch.images, scores,
                                batch.faces if framing.framing == "face" else None)
                    batch.images.clear()
                for b, (span, wf) in enumerate(zip(batch.spans, batch.faces)):
                    row = self._window_row(span, float(logits[b]), float(scores[b]), weights[b], fps, threshold)
                    rows.append({**row, **window_fields(wf, framing)})
                if not dense:
                    progress.advance(len(batch.spans))
            if dense:
                frames_seen(video.frame_count)  # the frames after the last window are done too
            warnings, media, timings, mel_rate = video.warnings, video.media, video.timings, video.mel_rate
            n_windows, faces = video.n_windows, video.faces

        return self.scored_result(path, options, rows, framing=framing, faces=faces, n_windows=n_windows,
                                  warnings=warnings, media=media, timings=timings, mel_rate=mel_rate)

    def scored_result(self, path, options: LipFDOptions, rows: list[dict[str, Any]], *, framing, faces, n_windows: int,
                      warnings: list[str], media: dict, timings: dict[str, float], mel_rate: int) -> DetectionResult:
        """The result of scored window rows (``_window_row`` + ``window_fields``): the verdict per face track
        and for the video, the warnings about faces, segments. One builder for ``analyze`` and the batched path."""
        rows.sort(key=lambda r: (r["index"], -1 if r["track"] is None else r["track"]))
        verdict = decide(rows, framing)
        scored = {r["index"] for r in rows}
        if faces is not None and framing.windows_with_face == 0:
            warnings.append("no face was seen in any window: this verdict rests on the whole frame, not on lips (framing=full)")
        elif len(scored) < n_windows:
            warnings.append(f"{n_windows - len(scored)} of {n_windows} windows had no tracked face and were not scored")
        deciding = [r for r in rows if framing.framing == "full" or r["track"] == verdict.deciding_track]
        dense, threshold = options.sampling == "dense", options.threshold
        return DetectionResult.scored(
            score=verdict.score, window_scores=verdict.window_scores, window_indices=verdict.window_indices,
            threshold=threshold, detector_id=self.card.id, detector_version=self.card.version, media_path=os.fspath(path),
            processing_time=sum(timings.values()),
            frames_analyzed=len({f for r in rows for f in range(r["start_frame"], r["end_frame"] + 1)}),
            windows=rows, segments=segments_from_windows(deciding, threshold),
            faces=face_tracks(faces, framing, verdict, threshold), windows_with_face=framing.windows_with_face,
            warnings=warnings, device=self.device, precision=self.precision, timings=timings, media=media,
            options={**options.model_dump(mode="json"), "batch_size": self.region_batch(options),
                     "framing_used": framing.framing, "mel_sample_rate": mel_rate,
                     "distinct_frame_crops": options.resolved("distinct_frame_crops"), "stride": options.dense_stride if dense else options.stride},
        )

    def no_face_result(self, path, options: LipFDOptions, *, n_windows: int, faces, framing, warnings: list[str],
                       media: dict, timings: dict[str, float]) -> DetectionResult:
        """Face or auto framing and no face tracked in any window: no verdict (never a placeholder score)."""
        return DetectionResult.abstained(
            f"no face was tracked in any of the {n_windows} windows; LIPFD-V1 compares lips with speech, "
            f"so there is nothing to judge (framing={options.framing})", code="no_face",
            detector_id=self.card.id, detector_version=self.card.version, media_path=os.fspath(path),
            processing_time=sum(timings.values()), faces=face_tracks(faces, framing, None, options.threshold),
            windows_with_face=0, warnings=warnings, device=self.device, precision=self.precision,
            timings=timings, media=media,
            options={**options.model_dump(mode="json"), "framing_used": framing.framing})

    def evidence(self, media_path, result, *, windows=None):
        """The window images (mel strip over the frames) of ``result``'s windows, recomputed without the model."""
        from forensics_core.media import validate_path

        from .evidence import window_images

        return window_images(validate_path(media_path), result, windows)

    @staticmethod
    def _window_row(span, logit: float, score: float, weights, fps: float, threshold: float) -> dict[str, Any]:
        """One entry of ``windows``; ``weights`` (L, scales) are the region weights of its frames."""
        return {
            "index": span.index, "start_frame": span.start_frame, "end_frame": span.end_frame,
            "start_time": span.start_frame / fps if fps else 0.0, "end_time": (span.start_frame + span.window_len) / fps if fps else 0.0,
            "score": score, "prediction": label_for(score, threshold), "logit": logit, "mel_columns": [span.mel_begin, span.mel_end],
            "region_weights": {name: [float(v) for v in weights[:, j]] for j, name in enumerate(SCALES)},
        }

    def region_batch(self, options: LipFDOptions) -> int:
        """Images per region-branch call: the option, else 10 in fp32 and 25 in bf16/fp16 (measured on a
        2-core AVX512-BF16 CPU: bf16 ResNet-50 took 3.7 s at 25 against 4.5 s at 10, same scores)."""
        return options.batch_size or (10 if self.precision == "fp32" else 25)

    @contextlib.contextmanager
    def _model_turn(self):
        """One model call at a time (decoding runs in parallel), no autograd, and fp32 meaning fp32:
        no TF32 in cuDNN's convolutions (on by default) or cuBLAS while it runs."""
        import torch

        with self._infer_lock, torch.inference_mode():
            cuda = self.device.startswith("cuda")
            tf32 = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) if cuda and self.precision == "fp32" else None
            if tf32:
                torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
            try:
                yield
            finally:
                if tf32:
                    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32

    def _stem(self, x1120):
        """The model's input convolution on one window's 1120 px input, as it is built (no batch of them is held)."""
        with self._model_turn():
            return self.net.stem(x1120.to(self.device))

    def _infer(self, global_in, crops, chunk: int):
        import ctypes
        import sys

        import torch

        net, dev = self.net, self.device
        cuda = dev.startswith("cuda")
        timings = {}
        with self._model_turn():
            if sys.platform.startswith("linux"):  # hand the heap pages freed by decoding back before the forward
                try:
                    ctypes.CDLL(None).malloc_trim(0)
                except (OSError, AttributeError):  # not glibc
                    pass
            t0 = time.perf_counter()
            g = net.global_features(global_in.to(dev, non_blocking=True))
            del global_in  # the caller may hold it too; this frame does not need to
            if cuda:
                torch.cuda.synchronize(dev)
            t1 = time.perf_counter()
            feats = net.crop_features(crops.to(dev, non_blocking=True), chunk)
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

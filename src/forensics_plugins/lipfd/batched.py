"""Many files through LIPFD-V1 at accelerator speed: the scan path for a GPU.

One video at a time leaves a GPU idle: its 10 windows are a small batch, and the
CPU work around them (decoding, window images, resizes, crops) takes longer than
the forward. :func:`analyze_many` reorganises the same steps:

* decoding and window images (:func:`.pipeline.prepare`) run in worker processes,
  several files ahead of the model;
* the window images travel to the device as uint8 and are resized and cropped
  there (:func:`window_tensors_on`, the kernels of :func:`.windows.window_tensors`);
* the windows of ``files_per_batch`` files go through one forward.

Results are those of ``detector.analyze(path)`` up to float rounding (the batch
composition changes GEMM blocking); on the CPU the same code runs, which is how the
tests check it. A file that fails yields its error and never stops the others.
Measured on a GPU with benchmarks/gpu_scan.py.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from forensics_core.errors import ForensicsError, MediaProcessingError, as_media_error, is_decoder_exception
from forensics_core.results import DetectionResult

from .options import LipFDOptions
from .pipeline import PreparedVideo, prepare
from .windows import CROP_SIZE, FRAME_SIZE, GLOBAL_SIZE, _resize


def window_tensors_on(images: list[np.ndarray], device: str, *, window_len: int, distinct_frame_crops: bool = False,
                      antialias: bool = False, face_crop=(28, 196), lip_crop=(61, 163)):
    """:func:`.windows.window_tensors` with the resizes on ``device``: (B,3,1120,1120), (B,3,L,3,224,224)."""
    import torch

    L = window_len
    step = FRAME_SIZE if distinct_frame_crops else 1
    cols = (L - 1) * step + FRAME_SIZE
    (f0, f1), (l0, l1) = face_crop, lip_crop
    u8 = torch.from_numpy(np.stack(images)).to(device, non_blocking=True).permute(0, 3, 1, 2)  # (B,3,1000,500L), HWC in memory
    global_in = _resize(u8.float(), GLOBAL_SIZE, antialias)
    bottom = u8[:, :, FRAME_SIZE:, :cols].float()
    full = torch.stack([_resize(bottom[:, :, :, i * step:i * step + FRAME_SIZE], CROP_SIZE, antialias) for i in range(L)], 1)
    B = full.shape[0]
    flat = full.reshape(B * L, 3, CROP_SIZE, CROP_SIZE)
    face = _resize(flat[:, :, f0:f1, f0:f1], CROP_SIZE, antialias).reshape(B, L, 3, CROP_SIZE, CROP_SIZE)
    lip = _resize(flat[:, :, l0:l1, l0:l1], CROP_SIZE, antialias).reshape(B, L, 3, CROP_SIZE, CROP_SIZE)
    return global_in, torch.stack([full, face, lip], 1).contiguous()


def _prepare_in_worker(path: str, options: dict) -> PreparedVideo | dict:
    """``prepare`` in a worker; a ForensicsError comes back as its ``to_dict()`` (errors with
    keyword-only constructor arguments do not survive pickling) and is rebuilt by :func:`_error`."""
    from forensics_core.media import validate_path

    try:
        try:
            return prepare(validate_path(path), LipFDOptions(**options))
        except Exception as exc:  # as Detector.analyze maps them
            if is_decoder_exception(exc):
                raise as_media_error(exc, path) from exc
            raise
    except ForensicsError as exc:
        return {"__error__": exc.to_dict()}


def _error(d: dict) -> ForensicsError:
    if d["type"] == "MediaProcessingError":
        return MediaProcessingError(d["code"], d["message"], hint=d["hint"], path=d.get("path"))
    return ForensicsError(d["message"], hint=d["hint"], code=d["code"])


def _outcome(detector, path: str, error: dict) -> DetectionResult | ForensicsError:
    """What ``analyze`` gives for a file whose preparation raised: abstained for a missing modality, else the error."""
    from forensics_core.detector import ABSTAIN_CODES

    exc = _error(error)
    if isinstance(exc, MediaProcessingError) and exc.code in ABSTAIN_CODES:
        return detector.abstained_result(path, exc.code)
    return exc


def analyze_many(detector, paths: Iterable[str | os.PathLike], options: dict[str, Any] | None = None, *, workers: int = 2,
                 files_per_batch: int = 8, ahead: int | None = None) -> Iterator[tuple[str, DetectionResult | ForensicsError]]:
    """Yield ``(path, result or error)`` in input order; ``detector`` is a loaded LIPFD-V1.

    ``workers`` processes decode (0: in this process); ``ahead`` files (default
    ``2 * files_per_batch``) are decoded ahead of the model. Errors that are not
    :class:`ForensicsError` (a bug, not bad media) propagate.
    """
    opts = detector.parse_options(**(options or {}))
    plain = opts.model_dump(mode="json")
    ahead = ahead or 2 * files_per_batch
    pool = cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) if workers else None
    try:
        pending: deque[tuple[str, cf.Future]] = deque()
        todo = iter(os.fspath(p) for p in paths)

        def submit() -> bool:
            path = next(todo, None)
            if path is None:
                return False
            if pool is None:
                fut: cf.Future = cf.Future()
                fut.set_result(_prepare_in_worker(path, plain))
                pending.append((path, fut))
            else:
                pending.append((path, pool.submit(_prepare_in_worker, path, plain)))
            return True

        while len(pending) < ahead and submit():
            pass
        batch: list[tuple[str, PreparedVideo]] = []
        while pending:
            path, fut = pending.popleft()
            submit()
            prepared = fut.result()
            if isinstance(prepared, dict):
                yield from _run(detector, batch, opts)
                batch = []
                yield path, _outcome(detector, path, prepared["__error__"])
                continue
            batch.append((path, prepared))
            if len(batch) == files_per_batch:
                yield from _run(detector, batch, opts)
                batch = []
        yield from _run(detector, batch, opts)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def _run(detector, batch: list[tuple[str, PreparedVideo]], opts: LipFDOptions) -> Iterator[tuple[str, DetectionResult]]:
    """One forward for the windows of every file in ``batch``; a file without a window to score
    (face framing, no face) abstains as ``analyze`` does, without the forward."""
    for path, prepared in batch:
        if not prepared.spans:
            yield path, _finished(detector, path, detector.no_face_result(
                path, opts, n_windows=prepared.n_windows, faces=prepared.tracks, framing=prepared.framing,
                warnings=prepared.warnings, media=prepared.media, timings=prepared.timings), prepared.timings)
    batch = [(path, prepared) for path, prepared in batch if prepared.spans]
    if not batch:
        return
    t0 = time.perf_counter()
    images = [img for _, p in batch for img in p.images]
    global_in, crops = window_tensors_on(
        images, detector.device, window_len=opts.window_len, distinct_frame_crops=opts.resolved("distinct_frame_crops"),
        antialias=opts.antialias, face_crop=opts.face_crop, lip_crop=opts.lip_crop)
    del images
    build = time.perf_counter() - t0
    logits, weights, model_timings = detector._infer(global_in, crops, detector.region_batch(opts))
    del global_in, crops
    share = 1.0 / len(batch)  # the batch's shared stages, split evenly between its files
    start = 0
    for path, prepared in batch:
        n = len(prepared.spans)
        timings = {**prepared.timings, "window_build": prepared.timings.get("window_build", 0.0) + build * share,
                   **{k: v * share for k, v in model_timings.items()}}
        result = _result(detector, path, prepared, logits[start:start + n], weights[start:start + n], timings, opts)
        yield path, _finished(detector, path, result, timings)
        start += n


def _result(detector, path: str, prepared: PreparedVideo, logits: np.ndarray, weights: np.ndarray, timings: dict,
            options: LipFDOptions) -> DetectionResult:
    """The result ``detector.analyze(path)`` gives for the same windows (its row builder, its result builder)."""
    from .verdicts import window_fields

    scores = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    rows = [{**detector._window_row(s, float(logits[b]), float(scores[b]), weights[b], prepared.fps, options.threshold),
             **window_fields(prepared.faces[b], prepared.framing)} for b, s in enumerate(prepared.spans)]
    return detector.scored_result(path, options, rows, framing=prepared.framing, faces=prepared.tracks,
                                  n_windows=prepared.n_windows, warnings=prepared.warnings, media=prepared.media,
                                  timings=timings, mel_rate=prepared.mel_rate)


def _finished(detector, path: str, result: DetectionResult, timings: dict) -> DetectionResult:
    from forensics_core.media.paths import canonical_path  # the form analyze() names a file by; never raises

    return detector.finished(result, canonical_path(path), sum(timings.values()))

"""The images behind GenD's windows: each analysed face as the model read it (224 x 224).

Recomputed deterministically from the media and the result alone (the window's frame,
landmarks and crop size, the result's ``crop_size`` and ``scale`` options): no model,
no weights, the same decoder and the same alignment, so the same pixels. During an
analysis the crops are at hand, so they are offered to a report's capture instead.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .align import align_face
from .preprocess import resize_224


def caption(window: dict[str, Any], still: bool) -> str:
    where = "the image" if still else f"frame {window['start_frame']} ({window['start_time']:.2f} s)"
    return f"{where}: aligned face, p_fake {window['score']:.3f}"


def image(face_rgb_224: np.ndarray, window: dict[str, Any], still: bool):
    """An evidence image (OpenCV's BGR order, as the report expects)."""
    from forensics_core.evidence_images import EvidenceImage

    return EvidenceImage(window_index=int(window["index"]), image=np.ascontiguousarray(face_rgb_224[:, :, ::-1]),
                         caption=caption(window, still), kind="input")


def recompute(media_path: str | os.PathLike, result: dict[str, Any], windows: Sequence[int] | None = None) -> list:
    """The 224 x 224 aligned face of each chosen window of ``result``, from the media."""
    from forensics_core.media import probe, validate_path

    from .frames import read_bgr, read_image

    chosen = [w for w in result.get("windows") or [] if windows is None or w["index"] in set(windows)]
    if not chosen:
        return []
    options = result.get("options") or {}
    crop_size, scale = options.get("crop_size", "auto"), float(options.get("scale", 1.3))
    path = validate_path(media_path)
    still = probe(path).still_image
    if still:
        pictures = {0: read_image(path)}
    else:
        pictures = {i: frame[:, :, ::-1] for i, frame in read_bgr(path, sorted({w["start_frame"] for w in chosen})).items()}
    out = []
    for w in chosen:
        picture = pictures.get(w["start_frame"])
        aligned = None if picture is None else align_face(picture, w["landmarks"], crop_size, scale)
        if aligned is not None:
            out.append(image(resize_224(aligned.crop), w, still))
    return out

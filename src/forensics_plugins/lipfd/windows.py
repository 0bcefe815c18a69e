"""Windows: the 1000 x 500L image per window, and the tensors the model reads.

Rows 0-499 hold the window's slice of the mel image, rows 500-999 its L frames
side by side. The released loader reads the saved image with ``cv2.imread`` (BGR,
0..255, its CLIP normalisation computed and then discarded), takes full-scale
crops at columns ``i:i+500`` (the first frame shifted by i px, not frame i), cuts
the face and lip crops from the 224 px full crop, and resizes without antialiasing.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .video import FRAME_SIZE

GLOBAL_SIZE = 1120
#: the three crop scales, in the order of the crops tensor and of the region weights
SCALES = ("full", "face", "lip")
CROP_SIZE = 224


@dataclass(frozen=True)
class WindowSpan:
    index: int
    start_frame: int
    window_len: int
    mel_begin: int
    mel_end: int

    @property
    def end_frame(self) -> int:
        return self.start_frame + self.window_len - 1


def align(starts: list[int], frame_count: int, mel_columns: int, window_len: int) -> list[WindowSpan]:
    """Mel columns of each window: ``round(start * T/F)`` .. ``round((start+L) * T/F)``, half to even."""
    mapping = mel_columns / frame_count
    spans = []
    for i, start in enumerate(starts):
        begin = int(np.round(start * mapping))
        end = int(np.round((start + window_len) * mapping))
        spans.append(WindowSpan(i, start, window_len, begin, end))
    return spans


def window_image(mel_rgba: np.ndarray, frames_bgr: Sequence[np.ndarray]) -> np.ndarray:
    """The window image in BGR uint8, pixel-identical to the released ``cv2.imread`` of its PNG.

    ``mel_rgba`` is the window's own slice of the mel image (columns
    ``span.mel_begin:span.mel_end``, coloured on the clip's scale: ``MelPower.rgba``),
    ``frames_bgr`` its L frames at 500x500.
    """
    import cv2

    L = len(frames_bgr)
    sub = mel_rgba[:, :, 2::-1]  # RGBA -> BGR (resizing is per channel)
    sub = cv2.resize(np.ascontiguousarray(sub), (FRAME_SIZE * L, FRAME_SIZE), interpolation=cv2.INTER_LINEAR)
    out = np.empty((2 * FRAME_SIZE, FRAME_SIZE * L, 3), dtype=np.uint8)
    out[:FRAME_SIZE] = sub
    for k, frame in enumerate(frames_bgr):
        out[FRAME_SIZE:, k * FRAME_SIZE:(k + 1) * FRAME_SIZE] = frame
    return out


def _resize(x, size: int, antialias: bool):
    import torch.nn.functional as F

    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=antialias)


def window_tensors(images: list[np.ndarray], *, window_len: int, distinct_frame_crops: bool = False,
                   antialias: bool = False, face_crop=(28, 196), lip_crop=(61, 163), global_stem=None):
    """(global input (B,3,1120,1120), crops (B,3 scales,L,3,224,224)), float32 BGR 0..255.

    One window at a time (its float copy is 30 MB, not the batch's 300 MB), and for the
    crops only the columns they read; the values are those of resizing the whole batch
    at once (same kernels, same layouts). ``global_in`` is channels-last in memory, as
    a resize of the HWC image gives it; ``crops`` is contiguous.

    ``global_stem`` (the model's 5x5 stride-5 input convolution, :meth:`.model.LipFDNet.stem`)
    is applied to each window's 1120 px input as soon as it exists, so the batch's
    (B,3,1120,1120) tensor (15 MB a window) is never held: the first part is then (B,3,224,224).
    """
    import torch

    B, L = len(images), window_len
    step = FRAME_SIZE if distinct_frame_crops else 1
    cols = (L - 1) * step + FRAME_SIZE  # columns of the frame strip the full-scale crops read
    (f0, f1), (l0, l1) = face_crop, lip_crop
    global_in = None if global_stem is not None else torch.empty(
        (B, 3, GLOBAL_SIZE, GLOBAL_SIZE), dtype=torch.float32, memory_format=torch.channels_last)
    stems = []
    crops = torch.empty((B, 3, L, 3, CROP_SIZE, CROP_SIZE), dtype=torch.float32)
    for b, image in enumerate(images):
        img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]  # (1,3,1000,500L) uint8, HWC in memory
        if global_stem is None:
            global_in[b] = _resize(img.float(), GLOBAL_SIZE, antialias)[0]
        else:
            stems.append(global_stem(_resize(img.float(), GLOBAL_SIZE, antialias)))
        bottom = img[:, :, FRAME_SIZE:, :cols].float()
        full = torch.cat([_resize(bottom[:, :, :, i * step:i * step + FRAME_SIZE], CROP_SIZE, antialias) for i in range(L)])
        crops[b, 0] = full
        crops[b, 1] = _resize(full[:, :, f0:f1, f0:f1], CROP_SIZE, antialias)
        crops[b, 2] = _resize(full[:, :, l0:l1, l0:l1], CROP_SIZE, antialias)
    return (global_in if global_stem is None else torch.cat(stems)), crops

"""The aligned crop to the model's input tensor, as the authors' CLIP image processor.

Upstream calls ``CLIPProcessor.from_pretrained("openai/clip-vit-large-patch14")``
with transformers 4.56.2, which is the slow, PIL-based processor (docs/gend.md):
Pillow's bicubic resize to 224 x 224 (the square crop makes the centre crop a
no-op), ``u8 * (1/255)`` in float64 stored as float32, then ``(x - mean) / std`` in
float32, channels first, RGB. The fast (torchvision) processor that transformers 5
makes the default moves the logits by 6e-4, so it is not used.
"""
from __future__ import annotations

import numpy as np

SIZE = 224
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def resize_224(crop_rgb: np.ndarray) -> np.ndarray:
    """Pillow bicubic to 224 x 224, uint8 RGB: the exact image the processor normalises."""
    from PIL import Image

    return np.asarray(Image.fromarray(np.ascontiguousarray(crop_rgb)).resize((SIZE, SIZE), Image.BICUBIC))


def normalise(u8_rgb: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 RGB -> float32 3xHxW, rescaled and standardised as the CLIP processor."""
    x = (u8_rgb.astype(np.float64) * (1 / 255)).astype(np.float32)
    x = (x - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def model_input(crop_rgb: np.ndarray) -> np.ndarray:
    """The aligned RGB crop -> the 3 x 224 x 224 float32 tensor GenD sees."""
    return normalise(resize_224(crop_rgb))

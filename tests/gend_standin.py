"""Deterministic stand-in weights for GenD, in the released ``model.safetensors`` layout.

Our implementation of the reference's stand-in rule (tests/data/gend_g1/README.md):
per key, ``numpy.random.RandomState(crc32(key))`` draws N = standard normal in C order
(float64), the first matching rule below gives the tensor, rounded once to float32.
Every tensor is checked against ``weights_fingerprint.json`` as it is made, so a
drift in the rule fails loudly instead of silently changing the expected outputs.
"""
from __future__ import annotations

import hashlib
import json
import math
import zlib
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data" / "gend_g1"
HEAD_GAIN, POSITION_GAIN, LN_GAIN, BIAS_GAIN = 64.0, 0.5, 0.05, 0.02
LAYER_NORMS = ("pre_layrnorm.", "post_layernorm.", "layer_norm1.", "layer_norm2.")


def standin_tensor(key: str, shape: list[int]) -> np.ndarray:
    shape = tuple(int(s) for s in shape)
    n = np.asarray(np.random.RandomState(zlib.crc32(key.encode("utf-8"))).standard_normal(shape), dtype=np.float64)
    leaf = key.rsplit(".", 1)[-1]
    if key == "model.linear.weight":
        value = HEAD_GAIN * n / math.sqrt(shape[1])
    elif key.endswith("embeddings.class_embedding"):
        value = n
    elif key.endswith("embeddings.position_embedding.weight"):
        value = POSITION_GAIN * n
    elif leaf == "weight" and any(m in key for m in LAYER_NORMS):
        value = 1.0 + LN_GAIN * n
    elif leaf == "bias":
        value = BIAS_GAIN * n
    elif len(shape) >= 2:
        value = n / math.sqrt(int(np.prod(shape[1:])))
    else:
        raise ValueError(f"no stand-in rule for {key} {shape}")
    return value.astype(np.float32)


def standin_state_dict(*, verify: bool = True) -> dict:
    """All 394 stand-in tensors (torch, float32), each checked against the reference fingerprint."""
    import torch

    manifest = json.loads((DATA / "manifest.json").read_text())
    fingerprint = json.loads((DATA / "weights_fingerprint.json").read_text()) if verify else {}
    state = {}
    for key, spec in manifest.items():
        arr = np.ascontiguousarray(standin_tensor(key, spec["shape"]))
        if verify and hashlib.sha256(arr.astype("<f4").tobytes()).hexdigest() != fingerprint[key]["sha256"]:
            raise AssertionError(f"stand-in rule drifted from the reference fingerprint at {key}")
        state[key] = torch.from_numpy(arr)
    return state


def write_standin(path: Path) -> Path:
    """``safetensors.torch.save_file(..., metadata={"format": "pt"})``, as transformers' save_pretrained."""
    from safetensors.torch import save_file

    save_file(standin_state_dict(), str(path), metadata={"format": "pt"})
    return path

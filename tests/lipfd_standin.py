"""Deterministic stand-in weights for LipFD, in the released checkpoint format.

Our implementation of the reference's stand-in rule (tests/data/lipfd_v1/README.md):
per key, a legacy MT19937 stream seeded with crc32(key) draws N (standard normal)
or U (uniform), and the first matching rule below gives the tensor. Every tensor
is checked against ``weights_fingerprint.json`` as it is made, so a drift in the
rule fails loudly instead of silently changing the expected outputs.
"""
from __future__ import annotations

import hashlib
import json
import math
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data" / "lipfd_v1"

#: per-key gains that keep the stand-in's sigmoid heads unsaturated (raw 0..255 input)
GAIN = {
    "backbone.conv1.weight": 1.0 / 255.0,
    "backbone.get_weight.0.weight": 20.0,
    "backbone.fc.weight": 5.0,
    "encoder.visual.proj": 0.2,
}


def standin_tensor(key: str, shape: list[int]) -> np.ndarray:
    shape = tuple(int(s) for s in shape)
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return np.zeros(shape, dtype=np.int64)
    rng = np.random.RandomState(zlib.crc32(key.encode("utf-8")))
    if leaf == "running_mean":
        value = 0.1 * rng.standard_normal(shape)
    elif leaf == "running_var":
        value = 1.0 + 0.1 * rng.random_sample(shape)
    elif leaf == "logit_scale":
        value = np.full(shape, math.log(100.0))
    elif "embedding" in key:
        value = 0.02 * rng.standard_normal(shape)
    elif leaf.endswith("bias"):
        value = 0.02 * rng.standard_normal(shape)
    elif len(shape) == 1 and leaf == "weight":
        value = 1.0 + 0.02 * rng.standard_normal(shape)
    elif len(shape) >= 2:
        value = rng.standard_normal(shape) / math.sqrt(int(np.prod(shape[1:])))
    else:
        raise ValueError(f"no stand-in rule for {key} {shape}")
    return (np.asarray(value, dtype=np.float64) * GAIN.get(key, 1.0)).astype(np.float32)


def standin_state_dict(keys: list[str] | None = None, *, verify: bool = True) -> "OrderedDict":
    """The stand-in tensors (torch) for ``keys`` (default: all 770), fingerprint-checked."""
    import torch

    manifest = json.loads((DATA / "checkpoint_keys.json").read_text())
    fingerprint = json.loads((DATA / "weights_fingerprint.json").read_text()) if verify else {}
    state = OrderedDict()
    for key in keys or list(manifest):
        arr = np.ascontiguousarray(standin_tensor(key, manifest[key]["shape"]))
        if verify and hashlib.sha256(arr.tobytes()).hexdigest() != fingerprint[key]["sha256"]:
            raise AssertionError(f"stand-in rule drifted from the reference fingerprint at {key}")
        state[key] = torch.from_numpy(arr)
    return state


def write_standin_checkpoint(path: Path, *, extra: dict | None = None) -> Path:
    """``torch.save({"model": state_dict, **extra})``: the released trainer's format."""
    import torch

    torch.save({"model": standin_state_dict(), **(extra or {})}, path)
    return path

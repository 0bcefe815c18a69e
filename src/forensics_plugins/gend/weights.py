"""Reading GenD weights: the released ``model.safetensors`` layout, strictly, and nothing else.

The Hugging Face file (``yermandy/GenD_CLIP_L_14``) is what ``GenD.save_pretrained``
writes: the CLIP ViT-L/14 vision tower under ``feature_extractor.vision_model.*``,
the unused ``feature_extractor.visual_projection.weight`` and the head
``model.linear.{weight,bias}``: 394 float32 tensors. Only safetensors is read (no
pickle at all); a ``.pth``/``.bin`` is refused with a hint. The header is checked
before any tensor is read, so a wrong file fails in milliseconds, and every tensor
is checked finite after reading.
"""
from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

from forensics_core.errors import WeightsError

TOWER_PREFIX = "feature_extractor.vision_model."
PROJECTION = "feature_extractor.visual_projection.weight"  # shipped, unused by the forward
HEAD = ("model.linear.weight", "model.linear.bias")
WIDTH, LAYERS, MLP, PATCH, TOKENS, CLASSES = 1024, 24, 4096, 14, 257, 2
MAX_HEADER_BYTES = 100 << 20


def expected_layout() -> dict[str, tuple[int, ...]]:
    """Every key of the released file with its shape (float32 throughout)."""
    v = TOWER_PREFIX
    shapes: dict[str, tuple[int, ...]] = {
        v + "embeddings.class_embedding": (WIDTH,),
        v + "embeddings.patch_embedding.weight": (WIDTH, 3, PATCH, PATCH),
        v + "embeddings.position_embedding.weight": (TOKENS, WIDTH),
        v + "pre_layrnorm.weight": (WIDTH,), v + "pre_layrnorm.bias": (WIDTH,),
        v + "post_layernorm.weight": (WIDTH,), v + "post_layernorm.bias": (WIDTH,),
        PROJECTION: (768, WIDTH),
        HEAD[0]: (CLASSES, WIDTH), HEAD[1]: (CLASSES,),
    }
    for i in range(LAYERS):
        p = f"{v}encoder.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            shapes[f"{p}self_attn.{proj}.weight"] = (WIDTH, WIDTH)
            shapes[f"{p}self_attn.{proj}.bias"] = (WIDTH,)
        for norm in ("layer_norm1", "layer_norm2"):
            shapes[f"{p}{norm}.weight"] = (WIDTH,)
            shapes[f"{p}{norm}.bias"] = (WIDTH,)
        shapes[p + "mlp.fc1.weight"], shapes[p + "mlp.fc1.bias"] = (MLP, WIDTH), (MLP,)
        shapes[p + "mlp.fc2.weight"], shapes[p + "mlp.fc2.bias"] = (WIDTH, MLP), (WIDTH,)
    return shapes


def read_header(path: Path) -> tuple[dict[str, dict], int]:
    """The safetensors header (key -> dtype, shape, offsets) and where the data starts, reading no tensor."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                raise ValueError("shorter than a safetensors header")
            (length,) = struct.unpack("<Q", raw)
            if length > MAX_HEADER_BYTES:
                raise ValueError(f"header length {length} is not plausible")
            header = json.loads(fh.read(length))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})",
                           hint="the file is truncated or not safetensors; download it again (`forensics pull GEND-CLIP-L14 --force`)") from exc
    header.pop("__metadata__", None)
    return header, 8 + length


def check_layout(header: dict[str, dict], source: str | os.PathLike) -> None:
    """The header must hold the released keys, shapes and dtype (``visual_projection`` may be absent)."""
    expected = expected_layout()
    missing = sorted(k for k in expected if k not in header and k != PROJECTION)
    unexpected = sorted(k for k in header if k not in expected)
    wrong = sorted(f"{k}: file {tuple(header[k].get('shape', ()))} {header[k].get('dtype')} vs F32 {expected[k]}"
                   for k in expected if k in header
                   and (tuple(header[k].get("shape", ())) != expected[k] or header[k].get("dtype") != "F32"))
    if missing or unexpected or wrong:
        def show(items):
            return ", ".join(items[:6]) + (f" (+{len(items) - 6} more)" if len(items) > 6 else "")

        parts = [f"{len(v)} {name}: {show(v)}" for name, v in
                 (("missing keys", missing), ("unexpected keys", unexpected), ("shape/dtype mismatches", wrong)) if v]
        raise WeightsError(f"{source}: does not fit GEND-CLIP-L14: " + "; ".join(parts),
                           hint="pass the released yermandy/GenD_CLIP_L_14 model.safetensors (`forensics pull GEND-CLIP-L14`)")


def validate_checkpoint(path: str | os.PathLike) -> None:
    """Cheap check that ``path`` is a GenD checkpoint (header only): for downloads before they enter the cache."""
    path = Path(path)
    _refuse_pickle(path)
    check_layout(read_header(path)[0], path)


def _refuse_pickle(path: Path) -> None:
    with open(path, "rb") as fh:
        head = fh.read(4)
    if path.suffix.lower() in {".pth", ".pt", ".bin", ".ckpt", ".pkl"} or head[:2] == b"PK" or head[:1] == b"\x80":
        raise WeightsError(f"{path}: GenD weights are read from safetensors only (this looks like a pickled PyTorch file)",
                           hint="use the released model.safetensors (`forensics pull GEND-CLIP-L14`); "
                                "pickles are never loaded for GenD")


def read_state_dict(path: str | os.PathLike) -> dict:
    """The checked tensors of a GenD ``.safetensors`` file: header first, then the data, then finiteness.

    Tensors are views of a private memory map of the file (no copy): the tower converts
    or folds what it changes and hands those pages back, so loading never holds two
    copies of the weights.
    """
    import mmap

    import torch

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}", hint="check --weights / FORENSICS_GEND_WEIGHTS, or run `forensics pull GEND-CLIP-L14`")
    _refuse_pickle(path)
    header, start = read_header(path)
    check_layout(header, path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)
    data = memoryview(mapped)
    state = {}
    for key, meta in header.items():
        begin, end = (start + int(v) for v in meta.get("data_offsets", (-1, -1)))
        shape = tuple(int(v) for v in meta["shape"])
        if not start <= begin <= end <= size or end - begin != 4 * math.prod(shape):
            raise WeightsError(f"{path}: tensor {key} lies outside the file or has the wrong length (truncated?)",
                               hint="download it again (`forensics pull GEND-CLIP-L14 --force`)")
        state[key] = torch.frombuffer(data[begin:end], dtype=torch.float32).view(shape)
    bad = [k for k, t in state.items() if not bool(torch.isfinite(t).all())]
    if bad:
        raise WeightsError(f"{path}: {len(bad)} tensors hold NaN or infinity, e.g. {', '.join(bad[:3])}",
                           hint="the file is corrupt; download it again (`forensics pull GEND-CLIP-L14 --force`)")
    return state

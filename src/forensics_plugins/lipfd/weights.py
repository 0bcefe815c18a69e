"""Reading LipFD checkpoints safely and strictly.

The released trainer saves ``{"model": state_dict, "optimizer": ..., "total_steps": ...}``
with a whole OpenAI CLIP (text tower included) under ``encoder.*``. We read it with
``torch.load(weights_only=True, mmap=True)`` (a pickle that tries to run code is
refused) or from safetensors, keep ``conv1.*``, ``encoder.visual.*`` and
``backbone.*``, ignore the text tower, and require every other key with its shape.
"""
from __future__ import annotations

import os
from pathlib import Path

from forensics_core.errors import WeightsError



def is_text_tower(key: str) -> bool:
    """CLIP's text tower and logit scale: every ``encoder.*`` key outside ``encoder.visual.*``."""
    return key.startswith("encoder.") and not key.startswith("encoder.visual.")


def read_state_dict(path: str | os.PathLike) -> dict:
    """The raw tensors of a ``.pth`` (weights_only, mmap) or ``.safetensors`` file."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}", hint="check --weights / the environment variable, or run `forensics pull LIPFD-V1`")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(os.fspath(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsError(f"{path}: not a readable safetensors file ({exc})", hint="the file is truncated or not safetensors; download or convert it again") from exc
    try:
        obj = torch.load(os.fspath(path), map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc):
            raise _unreadable(path, exc) from exc
        try:  # legacy (non-zip) serialisation cannot be memory-mapped
            obj = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
        except Exception as exc2:  # noqa: BLE001
            raise _unreadable(path, exc2) from exc2
    except Exception as exc:  # noqa: BLE001 - UnpicklingError, EOFError, zipfile errors...
        raise _unreadable(path, exc) from exc
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(hasattr(v, "shape") for v in obj.values()):
        raise WeightsError(f"{path}: expected {{'model': state_dict}} or a state_dict of tensors", hint="pass the LipFD checkpoint (ckpt.pth) or a file made by `forensics convert`")
    return obj


def _unreadable(path: Path, exc: BaseException) -> WeightsError:
    name = type(exc).__name__
    if "Unpickl" in name or "weights_only" in str(exc) or "Weights only load failed" in str(exc):
        return WeightsError(
            f"{path}: refused: the checkpoint contains pickled objects that are not plain tensors ({str(exc).splitlines()[0]})",
            hint="only weights_only checkpoints are loaded; never unpickle files you do not trust",
        )
    return WeightsError(f"{path}: cannot read the checkpoint ({name}: {str(exc).splitlines()[0] if str(exc) else ''})",
                        hint="the file is truncated or not a PyTorch checkpoint; download it again (`forensics pull LIPFD-V1 --force`)")


def to_model_keys(raw: dict) -> dict:
    """Checkpoint keys -> LipFDNet keys: drop the text tower, ``encoder.visual.`` -> ``encoder.``."""
    out = {}
    for key, value in raw.items():
        if key.startswith("module."):
            key = key[len("module."):]
        if is_text_tower(key):
            continue
        if key.startswith("encoder.visual."):
            key = "encoder." + key[len("encoder.visual."):]
        out[key] = value
    return out


def check_compatible(model, state: dict, source: str | os.PathLike) -> None:
    """Strict loading that names every missing and unexpected key and shape mismatch.

    ``state`` is conformed in place where torch's ``load_state_dict`` would accept it.
    """
    expected = model.state_dict()
    for key in set(expected) & set(state):  # torch's own rule: a 1-element tensor fills a 0-d one
        if expected[key].dim() == 0 and tuple(state[key].shape) == (1,):
            state[key] = state[key].reshape(())
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
                    for k in set(expected) & set(state) if tuple(state[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or shapes:
        def show(items):
            return ", ".join(items[:8]) + (f" (+{len(items) - 8} more)" if len(items) > 8 else "")

        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys: {show(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys: {show(unexpected)}")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches: {show(shapes)}")
        raise WeightsError(f"{source}: does not fit LIPFD-V1: " + "; ".join(parts),
                           hint="pass the published LipFD checkpoint (CLIP ViT-L/14) or a file converted from it")


def inference_state(raw: dict) -> dict:
    """What `forensics convert` keeps, in checkpoint naming (``encoder.visual.*``)."""
    return {k: v.contiguous() for k, v in raw.items() if not is_text_tower(k)}


def convert(src: str | os.PathLike, dst: str | os.PathLike) -> dict:
    """Checkpoint -> safetensors with only the tensors inference needs (checked against the model first)."""
    import torch
    from safetensors.torch import save_file

    from .model import LipFDNet

    raw = read_state_dict(src)
    with torch.device("meta"):
        model = LipFDNet()
    check_compatible(model, to_model_keys(raw), src)
    kept = inference_state(raw)
    dst = Path(dst)
    tmp = dst.with_name(dst.name + ".part")
    try:
        save_file(kept, os.fspath(tmp), metadata={"format": "pt", "detector": "LIPFD-V1"})
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return {"tensors": len(kept), "dropped": len(raw) - len(kept), "bytes": dst.stat().st_size}

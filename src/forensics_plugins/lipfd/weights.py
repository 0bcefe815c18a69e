"""Reading LipFD checkpoints safely and strictly.

The released trainer saves ``{"model": state_dict, "optimizer": ..., "total_steps": ...}``
with a whole OpenAI CLIP (text tower included) under ``encoder.*``. We read it with
``torch.load(weights_only=True, mmap=True)`` (a pickle that tries to run code is
refused) or from safetensors (recognised by content, whatever the file's name), keep
``conv1.*``, ``encoder.visual.*`` and ``backbone.*``, ignore the text tower, and require
every other key with its shape and every value finite (:func:`check_finite`): a
checkpoint with NaN weights would otherwise load and fail every file after a full
analysis. A file that is not a checkpoint at all (a WAV, a video, an HTML page) is
named as what it is.
"""
from __future__ import annotations

import os
from pathlib import Path

from forensics_core.errors import WeightsError



def is_text_tower(key: str) -> bool:
    """CLIP's text tower and logit scale: every ``encoder.*`` key outside ``encoder.visual.*``."""
    return key.startswith("encoder.") and not key.startswith("encoder.visual.")


#: File signatures of things people pass as weights by mistake: (offset, bytes, what it is).
_NOT_CHECKPOINTS = (
    (0, b"RIFF", "a RIFF file (WAV audio or AVI video)"),
    (4, b"ftyp", "an MP4/MOV media file"),
    (0, b"\x1aE\xdf\xa3", "a Matroska/WebM media file"),
    (0, b"ID3", "an MP3 audio file"),
    (0, b"fLaC", "a FLAC audio file"),
    (0, b"OggS", "an Ogg media file"),
    (0, b"\x89PNG", "a PNG image"),
    (0, b"\xff\xd8\xff", "a JPEG image"),
    (0, b"\x1f\x8b", "a gzip archive (unpack it first)"),
    (0, b"<", "an HTML/XML page (a failed download?)"),
)
_WEIGHTS_HINT = ("--weights takes LipFD's checkpoint (.pth: `forensics pull LIPFD-V1`) or a .safetensors file made by "
                 "`forensics convert`; a separate audio track goes to --audio")


def _sniff(path: Path) -> str:
    """``"zip"`` (torch), ``"pickle"`` (legacy torch), ``"safetensors"``, or what else the file looks like."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    size = path.stat().st_size
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    if len(head) >= 9 and int.from_bytes(head[:8], "little") < size and head[8:9] == b"{":
        return "safetensors"
    for offset, magic, what in _NOT_CHECKPOINTS:
        if head[offset:offset + len(magic)] == magic:
            return what
    return "an unknown format" if any(b < 9 or 13 < b < 32 for b in head) else "text"


def read_state_dict(path: str | os.PathLike) -> dict:
    """The raw tensors of a ``.pth`` (weights_only, mmap) or safetensors file (by content, not by name)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}", hint="check --weights / the environment variable, or run `forensics pull LIPFD-V1`")
    try:
        kind = _sniff(path)
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read the weights file ({exc.strerror or exc})", hint="check the file's permissions") from exc
    if path.stat().st_size == 0:
        raise WeightsError(f"{path}: the weights file is empty", hint=_WEIGHTS_HINT)
    if kind not in ("zip", "pickle", "safetensors"):
        raise WeightsError(f"{path} is not a checkpoint: it looks like {kind}", hint=_WEIGHTS_HINT)
    if kind == "safetensors":
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
    from forensics_plugins.nn.clip_keys import raise_if_misfit

    expected = model.state_dict()
    for key in set(expected) & set(state):  # torch's own rule: a 1-element tensor fills a 0-d one
        if expected[key].dim() == 0 and tuple(state[key].shape) == (1,):
            state[key] = state[key].reshape(())
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
                    for k in set(expected) & set(state) if tuple(state[k].shape) != tuple(expected[k].shape))
    raise_if_misfit(missing, unexpected, shapes, what="LIPFD-V1", source=source,
                    hint="pass the published LipFD checkpoint (CLIP ViT-L/14) or a file converted from it")


def check_finite(state: dict, source: str | os.PathLike) -> None:
    """Refuse NaN or infinite weights, naming the first tensors that hold them.

    Cheap: one sum per tensor (NaN and inf propagate through a sum), read from the
    memory map; only a tensor whose sum is not finite is checked element by element
    (a sum of large finite fp16 values can overflow). About 1-2 s for LipFD's 1.8 GB on
    a shared 2-core machine, most of it the first touch of the mapped pages, which the
    first analysis would otherwise pay (docs/lipfd.md).
    """
    import torch

    bad = []
    for key, tensor in state.items():
        if not (tensor.is_floating_point() or tensor.is_complex()) or tensor.device.type == "meta":
            continue
        if torch.isfinite(tensor.sum()).item():
            continue
        if not bool(torch.isfinite(tensor).all()):
            bad.append(key)
    if bad:
        shown = ", ".join(bad[:5]) + (f" (+{len(bad) - 5} more)" if len(bad) > 5 else "")
        raise WeightsError(f"{source}: {len(bad)} tensors hold NaN or infinite values: {shown}",
                           hint="the checkpoint is corrupt (or was saved from a diverged training run); "
                                "download it again (`forensics pull LIPFD-V1 --force`)")


def check_checkpoint(path: str | os.PathLike) -> None:
    """What `forensics pull` runs on a download before it enters the cache: readable safely, every key
    with its shape (against the model built on the meta device: no memory, no initialisation), finite."""
    import torch

    from .model import LipFDNet

    raw = read_state_dict(path)
    state = to_model_keys(raw)
    with torch.device("meta"):
        model = LipFDNet()
    check_compatible(model, state, path)
    check_finite(state, path)


def inference_state(raw: dict) -> dict:
    """What `forensics convert` keeps, in checkpoint naming (``encoder.visual.*``)."""
    return {k: v.contiguous() for k, v in raw.items() if not is_text_tower(k)}


def convert(src: str | os.PathLike, dst: str | os.PathLike) -> dict:
    """Checkpoint -> safetensors with only the tensors inference needs (checked against the model first)."""
    import torch
    from safetensors.torch import save_file

    from .model import LipFDNet

    dst = Path(dst)
    if dst.suffix != ".safetensors":
        raise WeightsError(f"{dst}: the output of `forensics convert` is safetensors and must be named *.safetensors",
                           hint=f"use {dst.with_suffix('.safetensors')}")
    raw = read_state_dict(src)
    with torch.device("meta"):
        model = LipFDNet()
    check_compatible(model, to_model_keys(raw), src)
    check_finite(raw, src)
    kept = inference_state(raw)
    tmp = dst.with_name(dst.name + ".part")
    try:
        # Made here with 0o666 so the umask applies, as for any file a program writes
        # (safetensors would create it 0600); save_file then writes into it.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666))
        mode = os.stat(tmp).st_mode & 0o777
        save_file(kept, os.fspath(tmp), metadata={"format": "pt", "detector": "LIPFD-V1"})
        os.chmod(tmp, mode)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return {"tensors": len(kept), "dropped": len(raw) - len(kept), "bytes": dst.stat().st_size}

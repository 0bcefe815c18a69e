"""CLIP image-tower checkpoints, in the layouts they ship in, to :class:`.vit.ViT`'s state dict.

* OpenAI's (``clip.load``, open_clip, LipFD's checkpoint under ``encoder.visual.``):
  the ViT's own names, so the mapping strips the prefix and checks.
* Hugging Face transformers' ``CLIPVisionModel`` (GenD's safetensors under
  ``feature_extractor.vision_model.``): renamed, and each block's separate
  q/k/v projections concatenated into one in-projection (q, k, v order, as
  ``nn.MultiheadAttention`` packs them), so both layouts run the same kernels.

The configuration comes from the tensors' shapes (:func:`vit_config_from_openai_state`,
:func:`vit_config_from_hf_clip_state`); the number of heads cannot be read from
shapes, so it is ``width // head_width`` with CLIP's 64-wide heads unless given.
Loading is strict: every missing, unexpected and shape-mismatched key is named,
with the checkpoint's own key names, in one :class:`~forensics_core.errors.WeightsError`.
"""
from __future__ import annotations

import re

import torch

from forensics_core.errors import WeightsError

from .vit import ViT, ViTConfig

#: CLIP's attention heads are 64 wide in every released model
HEAD_WIDTH = 64

_OPENAI_BLOCK = re.compile(r"transformer\.resblocks\.(\d+)\.")
_HF_BLOCK = re.compile(r"encoder\.layers\.(\d+)\.")
#: OpenAI block key -> HF block key (q/k/v handled apart)
_HF_BLOCK_NAMES = {
    "ln_1.weight": "layer_norm1.weight", "ln_1.bias": "layer_norm1.bias",
    "ln_2.weight": "layer_norm2.weight", "ln_2.bias": "layer_norm2.bias",
    "attn.out_proj.weight": "self_attn.out_proj.weight", "attn.out_proj.bias": "self_attn.out_proj.bias",
    "mlp.c_fc.weight": "mlp.fc1.weight", "mlp.c_fc.bias": "mlp.fc1.bias",
    "mlp.c_proj.weight": "mlp.fc2.weight", "mlp.c_proj.bias": "mlp.fc2.bias",
}
_HF_TOP_NAMES = {
    "class_embedding": "embeddings.class_embedding", "conv1.weight": "embeddings.patch_embedding.weight",
    "positional_embedding": "embeddings.position_embedding.weight",
    "ln_pre.weight": "pre_layrnorm.weight", "ln_pre.bias": "pre_layrnorm.bias",
    "ln_post.weight": "post_layernorm.weight", "ln_post.bias": "post_layernorm.bias",
}
#: keys an HF checkpoint may carry under the vision model that are not weights
_HF_IGNORED = ("embeddings.position_ids",)


def _within(state: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _need(sub: dict, key: str, prefix: str, source: str):
    if key not in sub:
        raise WeightsError(f"{source}: no {prefix}{key}: cannot read the ViT's shape from this checkpoint",
                           hint=f"is {prefix!r} the prefix of a CLIP image tower in this file?")
    return sub[key]


def _layers(sub: dict, pattern: re.Pattern, prefix: str, source: str) -> int:
    found = {int(m.group(1)) for k in sub if (m := pattern.match(k))}
    if not found or found != set(range(max(found) + 1)):
        missing = sorted(set(range(max(found, default=-1) + 1)) - found)
        raise WeightsError(f"{source}: the blocks under {prefix} are not numbered 0..N-1 (missing {missing or 'all'})",
                           hint="the checkpoint is truncated or not a CLIP image tower")
    return max(found) + 1


def _config(*, patch_w, pos, layers: int, mlp_w, proj_dim, heads, act, ln_eps, prefix: str, source: str) -> ViTConfig:
    width, channels, ph, pw = (tuple(patch_w.shape) + (0, 0, 0, 0))[:4]
    if patch_w.dim() != 4 or channels != 3 or ph != pw:
        raise WeightsError(f"{source}: {prefix} patch embedding has shape {tuple(patch_w.shape)}, expected (width, 3, p, p)",
                           hint="not a CLIP image tower")
    grid = round((pos.shape[0] - 1) ** 0.5)
    if pos.dim() != 2 or grid * grid + 1 != pos.shape[0]:
        raise WeightsError(f"{source}: {prefix} positional embedding has shape {tuple(pos.shape)}, expected (grid^2 + 1, width)",
                           hint="not a square-image CLIP tower")
    try:
        return ViTConfig(width=int(width), layers=layers, heads=heads or int(width) // HEAD_WIDTH, patch=int(ph),
                         image_size=grid * int(ph), mlp_dim=int(mlp_w.shape[0]), act=act, ln_eps=ln_eps, proj_dim=proj_dim)
    except ValueError as exc:
        raise WeightsError(f"{source}: {prefix}: {exc}", hint="pass the ViT's heads/act explicitly if they differ from CLIP's") from exc


def vit_config_from_openai_state(state: dict, prefix: str = "", *, heads: int | None = None, act: str = "quick_gelu",
                                 ln_eps: float = 1e-5, source: str = "checkpoint") -> ViTConfig:
    """The :class:`ViTConfig` of the OpenAI-layout tower under ``prefix``, from tensor shapes."""
    sub = _within(state, prefix)
    proj = sub.get("proj")
    return _config(patch_w=_need(sub, "conv1.weight", prefix, source), pos=_need(sub, "positional_embedding", prefix, source),
                   layers=_layers(sub, _OPENAI_BLOCK, prefix, source),
                   mlp_w=_need(sub, "transformer.resblocks.0.mlp.c_fc.weight", prefix, source),
                   proj_dim=None if proj is None else int(proj.shape[-1]), heads=heads, act=act, ln_eps=ln_eps,
                   prefix=prefix, source=source)


def vit_config_from_hf_clip_state(state: dict, prefix: str = "", *, projection_key: str | None = None, heads: int | None = None,
                                  act: str = "quick_gelu", ln_eps: float = 1e-5, source: str = "checkpoint") -> ViTConfig:
    """The :class:`ViTConfig` of the HF ``CLIPVisionModel`` under ``prefix`` (``..vision_model.``).

    ``projection_key`` (e.g. ``feature_extractor.visual_projection.weight``) adds the
    projection; without it the output is ``post_layernorm(CLS)`` (HF's ``pooler_output``).
    """
    sub = _within(state, prefix)
    proj_dim = None
    if projection_key is not None:
        if projection_key not in state:
            raise WeightsError(f"{source}: no {projection_key}", hint="pass projection_key=None for pooler_output features")
        proj_dim = int(state[projection_key].shape[0])
    return _config(patch_w=_need(sub, "embeddings.patch_embedding.weight", prefix, source),
                   pos=_need(sub, "embeddings.position_embedding.weight", prefix, source),
                   layers=_layers(sub, _HF_BLOCK, prefix, source), mlp_w=_need(sub, "encoder.layers.0.mlp.fc1.weight", prefix, source),
                   proj_dim=proj_dim, heads=heads, act=act, ln_eps=ln_eps, prefix=prefix, source=source)


def vit_shapes(config: ViTConfig) -> dict[str, tuple[int, ...]]:
    """The ViT's own state dict keys and shapes for ``config`` (built on the meta device)."""
    with torch.device("meta"):
        model = ViT(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def raise_if_misfit(missing, unexpected, shapes, *, what: str, source, hint: str) -> None:
    """A :class:`WeightsError` naming every missing and unexpected key and every shape mismatch
    (the first 8 of each, and how many more), when a checkpoint does not fit ``what``."""
    if not (missing or unexpected or shapes):
        return

    def show(items):
        items = sorted(items)
        return ", ".join(items[:8]) + (f" (+{len(items) - 8} more)" if len(items) > 8 else "")

    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys: {show(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys: {show(unexpected)}")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatches: {show(shapes)}")
    raise WeightsError(f"{source}: does not fit {what}: " + "; ".join(parts), hint=hint)


def _raise_if_problems(missing, unexpected, shapes, *, layout: str, source: str) -> None:
    raise_if_misfit(missing, unexpected, shapes, what=f"a CLIP ViT in the {layout} layout", source=source,
                    hint="check the prefix and that the file is the checkpoint this detector expects")


def vit_from_openai_state(state: dict, prefix: str = "", *, config: ViTConfig | None = None,
                          source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The ViT's state dict from OpenAI-layout keys under ``prefix`` (e.g. ``encoder.visual.``).

    Tensors are passed through, not copied. ``config`` defaults to the one the shapes give;
    pass it to require a specific tower.
    """
    config = config or vit_config_from_openai_state(state, prefix, source=source)
    expected = vit_shapes(config)
    sub = _within(state, prefix)
    shapes = [f"{prefix}{k}: checkpoint {tuple(sub[k].shape)} vs model {s}" for k, s in expected.items()
              if k in sub and tuple(sub[k].shape) != s]
    _raise_if_problems([prefix + k for k in expected if k not in sub], [prefix + k for k in sub if k not in expected],
                       shapes, layout="OpenAI", source=source)
    return {k: sub[k] for k in expected}


def hf_source_keys(own_key: str) -> list[str]:
    """The HF ``CLIPVisionModel`` key(s) (under its prefix) that make the ViT's ``own_key``."""
    if own_key in _HF_TOP_NAMES:
        return [_HF_TOP_NAMES[own_key]]
    m = _OPENAI_BLOCK.match(own_key)
    if m is None:
        raise KeyError(own_key)
    n, rest = m.group(1), own_key[m.end():]
    head = f"encoder.layers.{n}."
    if rest in ("attn.in_proj_weight", "attn.in_proj_bias"):
        leaf = "weight" if rest.endswith("weight") else "bias"
        return [f"{head}self_attn.{p}_proj.{leaf}" for p in ("q", "k", "v")]
    return [head + _HF_BLOCK_NAMES[rest]]


def vit_from_hf_clip_state(state: dict, prefix: str = "", *, projection_key: str | None = None, config: ViTConfig | None = None,
                           source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The ViT's state dict from an HF ``CLIPVisionModel`` under ``prefix`` (e.g.
    ``feature_extractor.vision_model.``): renamed, q/k/v concatenated (new tensors), the
    rest passed through. ``projection_key`` names ``visual_projection.weight`` (outside the
    prefix) when the projection is wanted; it is transposed to OpenAI's ``proj``.
    Keys outside ``prefix`` are not looked at (a classifier head, an unused projection).
    """
    config = config or vit_config_from_hf_clip_state(state, prefix, projection_key=projection_key, source=source)
    expected = vit_shapes(config)
    sub = _within(state, prefix)
    used, missing, shapes, out = set(_HF_IGNORED), [], [], {}
    for own, shape in expected.items():
        if own == "proj":
            if projection_key not in state:
                missing.append(str(projection_key))
                continue
            value = state[projection_key].t()
            name = projection_key
        else:
            keys = hf_source_keys(own)
            used.update(keys)
            absent = [prefix + k for k in keys if k not in sub]
            if absent:
                missing += absent
                continue
            parts = [sub[k] for k in keys]
            name = prefix + keys[0] if len(keys) == 1 else f"{prefix}{keys[0]} (+k, v)"
            if len({tuple(p.shape) for p in parts}) > 1:
                shapes.append(f"{name}: checkpoint q/k/v {[tuple(p.shape) for p in parts]} differ")
                continue
            value = parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)
        if tuple(value.shape) != shape:
            shapes.append(f"{name}: checkpoint {tuple(value.shape)} vs model {shape}")
            continue
        out[own] = value.contiguous() if own == "proj" else value
    _raise_if_problems(missing, [prefix + k for k in sub if k not in used], shapes, layout="Hugging Face CLIP", source=source)
    return out

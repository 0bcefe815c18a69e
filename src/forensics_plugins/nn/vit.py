"""The CLIP ViT image tower, as OpenAI trained it, for inference.

One module serves every CLIP checkpoint the detectors read: its state dict uses
OpenAI's names (``conv1``, ``class_embedding``, ``positional_embedding``, ``ln_pre``,
``transformer.resblocks.N.{ln_1, attn.in_proj_*, attn.out_proj, ln_2, mlp.c_fc,
mlp.c_proj}``, ``ln_post``, ``proj``), and :mod:`.clip_keys` maps other layouts
(Hugging Face's ``CLIPVisionModel``) onto it, q/k/v concatenated into one
in-projection so that every checkpoint runs the same fast path.

The forward is OpenAI's: patch conv, class token, positional embedding, ``ln_pre``,
pre-LN blocks with QuickGELU MLPs, ``ln_post`` of the class token, then ``@ proj``
when the checkpoint has a projection. Two things make it lean, not different:
the last block computes the class token only (the only token pooled; its keys and
values still see every token), and :meth:`ViT.prepare_inference` folds QuickGELU's
1.702 into the MLP weights (``x * sigmoid(1.702 x) = silu(1.702 x) / 1.702``) so the
activation and both residual adds fuse into oneDNN's GEMMs on the CPU
(:mod:`.kernels`). Every form computes the same function up to float rounding.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .kernels import linear, linear_add, release_mapped_pages

#: QuickGELU(x) = x * sigmoid(1.702 x) = SiLU(1.702 x) / 1.702
QUICKGELU_ALPHA = 1.702
#: the activations this module computes; CLIP checkpoints trained with another one must not load silently
ACTIVATIONS = ("quick_gelu",)


@dataclass(frozen=True)
class ViTConfig:
    """A ViT image tower's shape, as data. ``proj_dim`` None: the output is ``ln_post(CLS)``."""

    width: int
    layers: int
    heads: int
    patch: int
    image_size: int
    mlp_dim: int
    act: str = "quick_gelu"
    ln_eps: float = 1e-5
    proj_dim: int | None = None

    def __post_init__(self) -> None:
        for name in ("width", "layers", "heads", "patch", "image_size", "mlp_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"ViTConfig.{name} must be a positive int, got {value!r}")
        if self.width % self.heads:
            raise ValueError(f"ViTConfig: width {self.width} is not divisible by heads {self.heads}")
        if self.image_size % self.patch:
            raise ValueError(f"ViTConfig: image_size {self.image_size} is not a multiple of patch {self.patch}")
        if self.act not in ACTIVATIONS:
            raise ValueError(f"ViTConfig: activation {self.act!r} is not implemented (only {', '.join(ACTIVATIONS)}); "
                             "loading such a checkpoint here would compute another function")
        if not self.ln_eps > 0:
            raise ValueError(f"ViTConfig: ln_eps must be > 0, got {self.ln_eps!r}")
        if self.proj_dim is not None and (not isinstance(self.proj_dim, int) or self.proj_dim <= 0):
            raise ValueError(f"ViTConfig.proj_dim must be None or a positive int, got {self.proj_dim!r}")

    @property
    def grid(self) -> int:
        return self.image_size // self.patch

    @property
    def tokens(self) -> int:
        """Patches plus the class token."""
        return self.grid * self.grid + 1

    @property
    def output_dim(self) -> int:
        return self.proj_dim if self.proj_dim is not None else self.width


#: OpenAI CLIP's image towers (all with QuickGELU and 64-wide heads)
OPENAI_CLIP = {
    "ViT-B/32": ViTConfig(width=768, layers=12, heads=12, patch=32, image_size=224, mlp_dim=3072, proj_dim=512),
    "ViT-B/16": ViTConfig(width=768, layers=12, heads=12, patch=16, image_size=224, mlp_dim=3072, proj_dim=512),
    "ViT-L/14": ViTConfig(width=1024, layers=24, heads=16, patch=14, image_size=224, mlp_dim=4096, proj_dim=768),
}


class QuickGELU(nn.Module):
    """``x * sigmoid(1.702 x)``: the activation OpenAI's CLIP was trained with (not GELU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(QUICKGELU_ALPHA * x)


class Attention(nn.Module):
    """Multi-head self-attention with one packed q/k/v in-projection (``nn.MultiheadAttention``'s names)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * width))
        self.out_proj = nn.Linear(width, width)

    def mix(self, x: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        """The heads' output before ``out_proj``: (B, N, D), or (B, 1, D) for the first token only."""
        B, N, D = x.shape
        H = self.heads
        w, b = self.in_proj_weight, self.in_proj_bias
        if cls_only:
            q = linear(x[:, :1], w[:D], b[:D]).view(B, 1, H, D // H).transpose(1, 2)
            kv = linear(x, w[D:], b[D:]).view(B, N, 2, H, D // H).permute(2, 0, 3, 1, 4)
            k, v = kv[0], kv[1]
        else:
            q, k, v = linear(x, w, b).view(B, N, 3, H, D // H).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # scale 1/sqrt(D/H), as CLIP
        return out.transpose(1, 2).reshape(B, q.shape[2], D)


class MLP(nn.Module):
    """``c_proj(QuickGELU(c_fc(x)))``; after :meth:`fold_quickgelu`, ``c_proj(silu(c_fc(x)))``."""

    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.c_fc = nn.Linear(width, hidden)
        self.gelu = QuickGELU()
        self.c_proj = nn.Linear(hidden, width)
        self.folded = False

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        if self.folded:
            return linear(x, self.c_fc.weight, self.c_fc.bias, silu=True)
        return self.gelu(linear(x, self.c_fc.weight, self.c_fc.bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(self.hidden(x), self.c_proj.weight, self.c_proj.bias)


class Block(nn.Module):
    """Pre-LN residual block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.width, eps=config.ln_eps)
        self.attn = Attention(config.width, config.heads)
        self.ln_2 = nn.LayerNorm(config.width, eps=config.ln_eps)
        self.mlp = MLP(config.width, config.mlp_dim)

    def forward(self, x: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        mixed = self.attn.mix(self.ln_1(x), cls_only)
        x = linear_add(mixed, self.attn.out_proj.weight, self.attn.out_proj.bias, x[:, :1] if cls_only else x)
        return linear_add(self.mlp.hidden(self.ln_2(x)), self.mlp.c_proj.weight, self.mlp.c_proj.bias, x)


class Transformer(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.resblocks = nn.ModuleList(Block(config) for _ in range(config.layers))


class ViT(nn.Module):
    """CLIP's image tower: (B, 3, S, S) -> (B, ``config.output_dim``).

    Build it on the meta device and load a state dict with ``assign=True``
    (:func:`.clip_keys.vit_from_openai_state` or :func:`.clip_keys.vit_from_hf_clip_state`):
    nothing is initialised and the checkpoint's tensors are used in place.
    """

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.config = config
        W = config.width
        self.conv1 = nn.Conv2d(3, W, kernel_size=config.patch, stride=config.patch, bias=False)
        self.class_embedding = nn.Parameter(torch.empty(W))
        self.positional_embedding = nn.Parameter(torch.empty(config.tokens, W))
        self.ln_pre = nn.LayerNorm(W, eps=config.ln_eps)
        self.transformer = Transformer(config)
        self.ln_post = nn.LayerNorm(W, eps=config.ln_eps)
        if config.proj_dim is not None:
            self.proj = nn.Parameter(torch.empty(W, config.proj_dim))
        else:
            self.register_parameter("proj", None)
        self.inference_form = False

    def forward(self, x: torch.Tensor, *, cls_only_last: bool = True) -> torch.Tensor:
        """Pooled features. ``cls_only_last=False`` runs every token through the last block too
        (the same result; for counting the reference work)."""
        x = self.conv1(x.to(self.conv1.weight.dtype))
        B = x.shape[0]
        x = x.flatten(2).transpose(1, 2)  # (B, grid*grid, W)
        cls = self.class_embedding.to(x.dtype).expand(B, 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)
        blocks = self.transformer.resblocks
        for i, block in enumerate(blocks):
            x = block(x, cls_only=cls_only_last and i == len(blocks) - 1)
        pooled = self.ln_post(x[:, 0])
        return pooled @ self.proj if self.proj is not None else pooled

    @torch.no_grad()
    def prepare_inference(self, dtype: torch.dtype | None = None) -> ViT:
        """The inference form, once: eval, no grad, QuickGELU folded into the MLP weights
        (``c_fc`` x 1.702, ``c_proj`` / 1.702) and every tensor in ``dtype``.

        Each tensor that changes is computed from its source once, and the source's pages
        are handed back when it lies in an mmap'd checkpoint: converting to bf16 keeps no
        fp32 copy, and folding in fp32 replaces the MLP weights rather than doubling them.
        The state dict is then no longer the checkpoint's; build a fresh module to train.
        """
        if self.inference_form:
            return self
        self.eval().requires_grad_(False)
        dtype = dtype or self.conv1.weight.dtype
        scale = {}
        for block in self.transformer.resblocks:
            scale[id(block.mlp.c_fc.weight)] = scale[id(block.mlp.c_fc.bias)] = QUICKGELU_ALPHA
            scale[id(block.mlp.c_proj.weight)] = 1.0 / QUICKGELU_ALPHA
        for module in self.modules():
            for name, param in list(module.named_parameters(recurse=False)):
                factor = scale.get(id(param))
                if factor is None and param.dtype == dtype:
                    continue
                value = param.float() * factor if factor is not None else param
                setattr(module, name, nn.Parameter(value.to(dtype).contiguous(), requires_grad=False))
                release_mapped_pages([param])
        for block in self.transformer.resblocks:
            block.mlp.folded = True
        self.inference_form = True
        return self

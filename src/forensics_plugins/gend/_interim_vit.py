"""INTERIM: a plain HF-CLIP vision tower, used only until the shared forensics_plugins.nn.vit lands.

Deleted when GenD is built on the shared tower module (branch `towers`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _Layer(nn.Module):
    def __init__(self, width: int, heads: int, mlp: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(width, eps=1e-5), nn.LayerNorm(width, eps=1e-5)
        self.q, self.k, self.v, self.o = (nn.Linear(width, width) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(width, mlp), nn.Linear(mlp, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        h = self.ln1(x)
        q, k, v = (f(h).view(B, N, self.heads, D // self.heads).transpose(1, 2) for f in (self.q, self.k, self.v))
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, N, D)
        x = x + self.o(a)
        h = self.fc1(self.ln2(x))
        return x + self.fc2(h * torch.sigmoid(1.702 * h))


class InterimViT(nn.Module):
    def __init__(self, width=1024, layers=24, heads=16, mlp=4096, patch=14, tokens=257):
        super().__init__()
        self.patch = nn.Conv2d(3, width, patch, patch, bias=False)
        self.cls = nn.Parameter(torch.empty(width))
        self.pos = nn.Parameter(torch.empty(tokens, width))
        self.pre, self.post = nn.LayerNorm(width, eps=1e-5), nn.LayerNorm(width, eps=1e-5)
        self.layers = nn.ModuleList(_Layer(width, heads, mlp) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], 1, -1), x], 1) + self.pos
        x = self.pre(x)
        for layer in self.layers:
            x = layer(x)
        return self.post(x[:, 0])


def interim_from_hf(state: dict, prefix: str) -> InterimViT:
    names = {"embeddings.patch_embedding.weight": "patch.weight", "embeddings.class_embedding": "cls",
             "embeddings.position_embedding.weight": "pos", "pre_layrnorm.weight": "pre.weight", "pre_layrnorm.bias": "pre.bias",
             "post_layernorm.weight": "post.weight", "post_layernorm.bias": "post.bias"}
    sub = {"self_attn.q_proj": "q", "self_attn.k_proj": "k", "self_attn.v_proj": "v", "self_attn.out_proj": "o",
           "layer_norm1": "ln1", "layer_norm2": "ln2", "mlp.fc1": "fc1", "mlp.fc2": "fc2"}
    out = {}
    for key, value in state.items():
        if not key.startswith(prefix):
            continue
        k = key[len(prefix):]
        if k in names:
            out[names[k]] = value
        elif k.startswith("encoder.layers."):
            i, rest = k[len("encoder.layers."):].split(".", 1)
            mod, leaf = rest.rsplit(".", 1)
            out[f"layers.{i}.{sub[mod]}.{leaf}"] = value
    with torch.device("meta"):
        tower = InterimViT()
    tower.load_state_dict(out, strict=True, assign=True)
    return tower

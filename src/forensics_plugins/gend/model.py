"""The GenD network: CLIP ViT-L/14 vision tower -> pooled CLS -> L2 norm -> Linear(1024, 2).

Upstream (``src/hf/modeling_gend.py``): the backbone returns ``vision_model(x).pooler_output``,
the CLS token after the final LayerNorm (1024-d; ``visual_projection`` is loaded but
never used); the released head is ``LinearNorm``: ``linear(F.normalize(x, dim=1))``,
so the logits depend only on the feature's direction. Index 1 is "fake".
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .weights import HEAD, TOWER_PREFIX


class LinearNormHead(nn.Module):
    def __init__(self, width: int = 1024, classes: int = 2):
        super().__init__()
        self.linear = nn.Linear(width, classes)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return self.linear(F.normalize(feature, p=2, dim=1))


class GenDNet(nn.Module):
    """``tower`` maps images to the pooled 1024-d CLS feature; ``head`` to the two logits."""

    def __init__(self, tower: nn.Module, head: LinearNormHead):
        super().__init__()
        self.tower = tower
        self.head = head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.tower(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build(state: dict, source: str = "checkpoint", dtype: torch.dtype = torch.float32) -> GenDNet:
    """The network with the checkpoint's tensors (``state`` in the released key layout), ready for inference.

    The tower is the project's shared CLIP ViT (:mod:`forensics_plugins.nn`), the same module
    LIPFD-V1 uses with OpenAI's layout; here the HF ``CLIPVisionModel`` keys are mapped onto
    it without ``visual_projection`` (GenD pools ``post_layernorm(CLS)``, no projection).
    ``dtype`` is the tower's (bf16 converts once, no fp32 copy kept); the head stays fp32.
    """
    from forensics_plugins.nn import ViT, vit_config_from_hf_clip_state, vit_from_hf_clip_state

    config = vit_config_from_hf_clip_state(state, TOWER_PREFIX)
    with torch.device("meta"):
        tower = ViT(config)
        head = LinearNormHead(config.width)
    tower.load_state_dict(vit_from_hf_clip_state(state, TOWER_PREFIX, config=config, source=source), strict=True, assign=True)
    head.load_state_dict({"linear.weight": state[HEAD[0]], "linear.bias": state[HEAD[1]]}, strict=True, assign=True)
    tower.prepare_inference(dtype)
    net = GenDNet(tower, head.eval())
    for p in net.head.parameters():
        p.requires_grad_(False)
    return net

"""The LipFD network: a 5x5/5 conv, the CLIP image tower (global branch), and a
region-aware ResNet-50 (region branch).

Attribute names match the released checkpoint (``conv1``, ``encoder.visual.*``
renamed to ``encoder.*``, ``backbone.*``). The towers are the project's own modules
(:mod:`forensics_plugins.nn`): the CLIP ViT with OpenAI's names and QuickGELU (the
activation the checkpoint was trained with; open_clip's plain ``ViT-L-14`` config
would silently use GELU), and torchvision's ResNet-50 layout. Inference imports
neither open_clip nor torchvision; only the ``RN50`` CLIP tower, which LIPFD-V1 does
not use, is still built by open_clip, imported for it alone.

:meth:`LipFDNet.prepare` puts the loaded network in its inference form
(docs/performance.md): BatchNorm folded into the ResNet's convolutions, QuickGELU
folded into the ViT's MLP weights, oneDNN kernels with fused activations and residual
adds on the CPU, and a lower precision converted once with no fp32 copy kept. Every
form is the same function up to float rounding.
"""
from __future__ import annotations

import torch
from torch import nn

from forensics_plugins.nn.kernels import release_mapped_pages
from forensics_plugins.nn.resnet import ResNetTrunk
from forensics_plugins.nn.vit import OPENAI_CLIP, ViT, ViTConfig

#: CLIP towers built by open_clip (imported only for these); the ViTs are ours
OPEN_CLIP_TOWERS = {"RN50": "RN50-quickgelu"}
ARCHS = (*OPENAI_CLIP, *OPEN_CLIP_TOWERS)


def build_clip_image_tower(arch: str | ViTConfig = "ViT-L/14") -> tuple[nn.Module, int]:
    """The CLIP image tower for ``arch`` (a name in :data:`ARCHS` or a ViTConfig); returns (tower, feature size)."""
    if isinstance(arch, ViTConfig):
        return ViT(arch), arch.output_dim
    if arch in OPENAI_CLIP:
        return ViT(OPENAI_CLIP[arch]), OPENAI_CLIP[arch].output_dim
    if arch not in OPEN_CLIP_TOWERS:
        raise ValueError(f"unknown CLIP arch {arch!r}; known: {', '.join(ARCHS)}")
    import open_clip
    from open_clip.model import _build_vision_tower

    cfg = open_clip.get_model_config(OPEN_CLIP_TOWERS[arch])
    if cfg is None:
        raise ValueError(f"open_clip has no config for {arch}")
    # CLIP's ModifiedResNet has ReLUs and an attention pool, no MLP: the activation question does not arise
    return _build_vision_tower(cfg["embed_dim"], cfg["vision_cfg"], quick_gelu=True), int(cfg["embed_dim"])


class RegionAwareResNet(ResNetTrunk):
    """ResNet-50 trunk per crop; per frame, softmax over the 3 scales of ``get_weight``; ``fc`` on the mean."""

    def __init__(self, global_dim: int):
        super().__init__()
        feature_dim = self.feature_dim + global_dim
        self.get_weight = nn.Sequential(nn.Linear(feature_dim, 1), nn.Sigmoid())
        self.fc = nn.Linear(feature_dim, 1)

    def heads(self, crop_features: torch.Tensor, global_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """crop_features (B,S,L,2048), global (B,G) -> logits (B,), region weights (B,L,S)."""
        B, S, L, _ = crop_features.shape
        head_dtype = self.fc.weight.dtype
        g = global_features.to(head_dtype)[:, None, None, :].expand(B, S, L, global_features.shape[-1])
        features = torch.cat([crop_features.to(head_dtype), g], dim=-1)  # (B,S,L,2048+G)
        w = self.get_weight(features)  # (B,S,L,1)
        w = torch.softmax(w, dim=1)
        frame = (features * w).sum(1) / w.sum(1)  # (B,L,F)
        window = frame.sum(1) / L
        logits = self.fc(window).squeeze(-1)
        return logits, w.squeeze(-1).permute(0, 2, 1)


class LipFDNet(nn.Module):
    def __init__(self, arch: str | ViTConfig = "ViT-L/14"):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 3, kernel_size=5, stride=5)  # (1120, 1120) -> (224, 224)
        self.encoder, self.global_dim = build_clip_image_tower(arch)
        self.backbone = RegionAwareResNet(self.global_dim)

    @torch.no_grad()
    def prepare(self, dtype: torch.dtype = torch.float32) -> LipFDNet:
        """Inference form, once, before moving to a device: eval, no grad, BatchNorm folded (in
        fp32, before any dtype change), the towers in ``dtype`` (converted once, the mapped
        fp32 pages handed back), the 5x5 conv and the two small heads in fp32."""
        self.eval().requires_grad_(False)
        self.backbone.fold_batchnorm()
        if isinstance(self.encoder, ViT):
            self.encoder.prepare_inference(dtype)
        else:
            self.encoder.to(dtype)
        if dtype != torch.float32:
            heads = {id(p) for p in (*self.backbone.get_weight.parameters(), *self.backbone.fc.parameters())}
            for module in self.backbone.modules():
                for name, param in list(module.named_parameters(recurse=False)):
                    if id(param) not in heads and param.dtype != dtype:
                        setattr(module, name, nn.Parameter(param.to(dtype), requires_grad=False))
                        release_mapped_pages([param])
        return self

    def stem(self, x1120: torch.Tensor) -> torch.Tensor:
        """(B,3,1120,1120) -> (B,3,224,224): the 5x5 stride-5 input convolution, in its own dtype (fp32)."""
        return self.conv1(x1120.to(self.conv1.weight.dtype))

    def global_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B,3,1120,1120), or its :meth:`stem` (B,3,224,224) -> (B,G): ``ln_post(CLS) @ proj``, not normalised."""
        if x.shape[-1] > 224:  # not stemmed yet
            x = self.stem(x)
        return self.encoder(x.to(self.encoder.conv1.weight.dtype))

    def crop_features(self, crops: torch.Tensor, chunk: int) -> torch.Tensor:
        """(B,S,L,3,224,224) -> (B,S,L,2048), ``chunk`` images per trunk call."""
        B, S, L = crops.shape[:3]
        flat = crops.reshape(B * S * L, *crops.shape[3:])
        dtype = self.backbone.conv1.weight.dtype
        outs = []
        for i in range(0, flat.shape[0], chunk):
            part = flat[i:i + chunk].to(dtype).contiguous(memory_format=torch.channels_last)
            outs.append(self.backbone.trunk(part))
        return torch.cat(outs).reshape(B, S, L, -1)

    def forward(self, x1120: torch.Tensor, crops: torch.Tensor, chunk: int = 10):
        g = self.global_features(x1120)
        logits, weights = self.backbone.heads(self.crop_features(crops, chunk), g)
        return logits, weights, g

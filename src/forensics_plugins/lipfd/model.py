"""The LipFD network: a 5x5/5 conv, the CLIP image tower (global branch), and a
region-aware ResNet-50 (region branch).

Attribute names match the released checkpoint (``conv1``, ``encoder.visual.*``
renamed to ``encoder.*``, ``backbone.*``). Only CLIP's image tower is built, from
open_clip's configuration data; the published checkpoint uses OpenAI's QuickGELU,
which is asserted, not assumed (open_clip's ``ViT-L-14`` config silently uses GELU).
"""
from __future__ import annotations

import torch
from torch import nn

CLIP_CONFIGS = {"ViT-L/14": "ViT-L-14-quickgelu", "ViT-B/32": "ViT-B-32-quickgelu", "ViT-B/16": "ViT-B-16-quickgelu"}
SCALES = ("full", "face", "lip")


def build_clip_image_tower(arch: str = "ViT-L/14") -> tuple[nn.Module, int]:
    """open_clip's VisionTransformer for ``arch`` with QuickGELU; returns (tower, feature size)."""
    import open_clip
    from open_clip.model import _build_vision_tower
    from open_clip.transformer import QuickGELU

    cfg = open_clip.get_model_config(CLIP_CONFIGS[arch])
    if cfg is None:
        raise ValueError(f"open_clip has no config for {arch}")
    tower = _build_vision_tower(cfg["embed_dim"], cfg["vision_cfg"], quick_gelu=True)
    acts = [m.mlp.gelu for m in tower.transformer.resblocks]
    if not all(isinstance(a, QuickGELU) for a in acts):
        raise RuntimeError("the CLIP image tower was built without QuickGELU; the LipFD checkpoint needs it")
    return tower, int(cfg["embed_dim"])


class RegionAwareResNet(nn.Module):
    """ResNet-50 trunk per crop; per frame, softmax over the 3 scales of ``get_weight``; ``fc`` on the mean."""

    def __init__(self, global_dim: int):
        super().__init__()
        from torchvision.models.resnet import Bottleneck, ResNet

        trunk = ResNet(Bottleneck, [3, 4, 6, 3])
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool"):
            setattr(self, name, getattr(trunk, name))
        feature_dim = 512 * Bottleneck.expansion + global_dim
        self.get_weight = nn.Sequential(nn.Linear(feature_dim, 1), nn.Sigmoid())
        self.fc = nn.Linear(feature_dim, 1)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

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
    def __init__(self, arch: str = "ViT-L/14"):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 3, kernel_size=5, stride=5)  # (1120, 1120) -> (224, 224)
        self.encoder, self.global_dim = build_clip_image_tower(arch)
        self.backbone = RegionAwareResNet(self.global_dim)

    def global_features(self, x1120: torch.Tensor) -> torch.Tensor:
        """(B,3,1120,1120) -> (B,G): ``ln_post(CLS) @ proj``, not normalised."""
        x = self.conv1(x1120.to(self.conv1.weight.dtype))
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

"""The LipFD network: a 5x5/5 conv, the CLIP image tower (global branch), and a
region-aware ResNet-50 (region branch).

Attribute names match the released checkpoint (``conv1``, ``encoder.visual.*``
renamed to ``encoder.*``, ``backbone.*``). Only CLIP's image tower is built, from
open_clip's configuration data; the published checkpoint uses OpenAI's QuickGELU,
which is asserted, not assumed (open_clip's ``ViT-L-14`` config silently uses GELU).

Inference runs the same parameters through leaner code paths (docs/performance.md):
the CLIP blocks use ``scaled_dot_product_attention`` and a QuickGELU folded into
SiLU, and the last block computes only the class token (the only one pooled); the
ResNet's BatchNorms are folded into its convolutions at load (:meth:`LipFDNet.prepare`)
and, on the CPU in fp32, each convolution runs with its ReLU (and residual add)
fused by oneDNN. Every path is the same function up to float rounding.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CLIP_CONFIGS = {"ViT-L/14": "ViT-L-14-quickgelu", "ViT-B/32": "ViT-B-32-quickgelu", "ViT-B/16": "ViT-B-16-quickgelu"}


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


#: QuickGELU(x) = x * sigmoid(1.702 x) = SiLU(1.702 x) / 1.702
QUICKGELU_ALPHA = 1.702


def _lean_block_ok(block: nn.Module) -> bool:
    """Is ``block`` a plain open_clip ResidualAttentionBlock with QuickGELU, as the lean path computes it?"""
    from open_clip.transformer import QuickGELU

    attn = getattr(block, "attn", None)
    mlp = getattr(block, "mlp", None)
    return (
        isinstance(attn, nn.MultiheadAttention) and mlp is not None and not hasattr(block, "ln_1_kv")
        and attn.batch_first and attn._qkv_same_embed_dim and attn.in_proj_bias is not None
        and attn.bias_k is None and not attn.add_zero_attn and attn.dropout == 0.0
        and all(isinstance(getattr(block, n, None), nn.Identity) for n in ("ls_1", "ls_2"))
        and isinstance(getattr(mlp, "c_fc", None), nn.Linear) and isinstance(getattr(mlp, "c_proj", None), nn.Linear)
        and isinstance(getattr(mlp, "gelu", None), QuickGELU)
    )


def _attention(attn: nn.MultiheadAttention, x: torch.Tensor, cls_only: bool) -> torch.Tensor:
    """``attn(x, x, x)[0]`` (batch first); with ``cls_only`` for the first query token only."""
    B, N, D = x.shape
    H = attn.num_heads
    w, b = attn.in_proj_weight, attn.in_proj_bias
    if cls_only:
        q = F.linear(x[:, :1], w[:D], b[:D]).view(B, 1, H, D // H).transpose(1, 2)
        kv = F.linear(x, w[D:], b[D:]).view(B, N, 2, H, D // H).permute(2, 0, 3, 1, 4)
        k, v = kv[0], kv[1]
    else:
        qkv = F.linear(x, w, b).view(B, N, 3, H, D // H).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
    out = F.scaled_dot_product_attention(q, k, v)  # (B, H, n, D/H), scale 1/sqrt(D/H) as nn.MultiheadAttention
    out = out.transpose(1, 2).reshape(B, q.shape[2], D)
    return F.linear(out, attn.out_proj.weight, attn.out_proj.bias)


def _quickgelu_mlp(mlp: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``c_proj(QuickGELU(c_fc(x)))`` with one in-place SiLU over the wide activation:
    ``z = 1.702 (x W1 + b1)`` (GEMM alpha/beta), ``silu_(z)``, ``z W2 / 1.702 + b2`` (GEMM alpha)."""
    fc, proj = mlp.c_fc, mlp.c_proj
    shape = x.shape
    z = torch.addmm(fc.bias, x.reshape(-1, shape[-1]), fc.weight.t(), beta=QUICKGELU_ALPHA, alpha=QUICKGELU_ALPHA)
    F.silu(z, inplace=True)
    out = torch.addmm(proj.bias, z, proj.weight.t(), alpha=1.0 / QUICKGELU_ALPHA)
    return out.view(*shape[:-1], out.shape[-1])


def clip_image_features(tower: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``tower(x)`` for open_clip's VisionTransformer, inference only, leaner.

    Same embedding, blocks, pooling and projection; the blocks use SDPA and a fused
    QuickGELU, and when the class token is what is pooled the last block computes
    only that token. Falls back to ``tower(x)`` for configurations it does not cover.
    """
    blocks = getattr(getattr(tower, "transformer", None), "resblocks", None)
    simple = (
        blocks is not None and hasattr(tower, "_embeds") and hasattr(tower, "_pool") and not tower.training
        and getattr(tower.transformer, "batch_first", False) and getattr(tower, "attn_pool", None) is None
        and not getattr(tower, "output_tokens", False)
    )
    if simple and getattr(tower, "_lipfd_lean_ok", None) is None:
        tower._lipfd_lean_ok = all(_lean_block_ok(b) for b in blocks)
    if not simple or not tower._lipfd_lean_ok:
        return tower(x)
    x = tower._embeds(x)
    last = len(blocks) - 1
    cls_pool = getattr(tower, "pool_type", None) == "tok"
    for i, block in enumerate(blocks):
        cls_only = cls_pool and i == last
        a = _attention(block.attn, block.ln_1(x), cls_only)
        x = (x[:, :1] if cls_only else x) + a
        x = x + _quickgelu_mlp(block.mlp, block.ln_2(x))
    pooled, _ = tower._pool(x)
    if tower.proj is not None:
        pooled = pooled @ tower.proj
    return pooled


def _fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """conv <- bn(conv) (eval statistics), in float64; the weight is rewritten in place
    (a private copy-on-write page when it comes from an mmap'd checkpoint)."""
    with torch.no_grad():
        scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
        bias = bn.bias.double() - bn.running_mean.double() * scale
        if conv.bias is not None:
            bias = bias + conv.bias.double() * scale
        weight = (conv.weight.double() * scale.reshape(-1, 1, 1, 1)).to(conv.weight.dtype)
        if _writable(conv.weight):
            conv.weight.copy_(weight)
        else:
            conv.weight = nn.Parameter(weight, requires_grad=False)
        conv.bias = nn.Parameter(bias.to(conv.weight.dtype), requires_grad=False)


def _writable(t: torch.Tensor) -> bool:
    """May ``t`` be written in place? Not when torch maps checkpoints MAP_SHARED (it would write the file)."""
    import torch.serialization as ser

    get = getattr(ser, "get_default_mmap_options", None)
    try:
        import mmap

        shared = get is not None and get() == mmap.MAP_SHARED
    except (ImportError, AttributeError):
        shared = True
    return not shared and t.device.type == "cpu"


def _fused_conv_available() -> bool:
    op = getattr(torch.ops.mkldnn, "_convolution_pointwise", None)
    return bool(op is not None and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled)


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
        self.bn_folded = False

    def fold_batchnorm(self) -> None:
        """Inference only: fold each (eval) BatchNorm into the convolution before it; BN -> Identity."""
        if self.bn_folded:
            return
        pairs = [(self, "conv1", "bn1")]
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in layer:
                pairs += [(block, "conv1", "bn1"), (block, "conv2", "bn2"), (block, "conv3", "bn3")]
                if block.downsample is not None:
                    pairs.append((block.downsample, "0", "1"))
        for owner, conv_name, bn_name in pairs:
            _fold_bn(getattr(owner, conv_name), getattr(owner, bn_name))
            setattr(owner, bn_name, nn.Identity())
        self.bn_folded = True

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        if self.bn_folded and x.device.type == "cpu" and x.dtype == torch.float32 and _fused_conv_available():
            return self._trunk_fused_cpu(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def _trunk_fused_cpu(self, x: torch.Tensor) -> torch.Tensor:
        """The BN-folded trunk with oneDNN conv+ReLU and conv+add+ReLU fusion (fp32, CPU)."""
        op = torch.ops.mkldnn._convolution_pointwise

        def conv(t, c, attr):
            return op(t, c.weight, c.bias, list(c.padding), list(c.stride), list(c.dilation), c.groups, attr, [], "")

        x = self.maxpool(conv(x, self.conv1, "relu"))
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in layer:
                identity = x if block.downsample is None else conv(x, block.downsample[0], "none")
                out = conv(conv(x, block.conv1, "relu"), block.conv2, "relu")
                c = block.conv3
                # identity <- relu(identity + conv3(out)); ``identity`` is never the caller's tensor
                x = torch.ops.mkldnn._convolution_pointwise_.binary(
                    identity, out, c.weight, c.bias, list(c.padding), list(c.stride), list(c.dilation), c.groups,
                    "add", 1.0, "relu", [], "")
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

    def prepare(self) -> LipFDNet:
        """Inference form, on any device and before any dtype change: eval, no grad, BatchNorm folded."""
        self.eval().requires_grad_(False)
        self.backbone.fold_batchnorm()
        return self

    def global_features(self, x1120: torch.Tensor) -> torch.Tensor:
        """(B,3,1120,1120) -> (B,G): ``ln_post(CLS) @ proj``, not normalised."""
        x = self.conv1(x1120.to(self.conv1.weight.dtype))
        x = x.to(self.encoder.conv1.weight.dtype)
        if torch.is_inference_mode_enabled() or not torch.is_grad_enabled():
            return clip_image_features(self.encoder, x)
        return self.encoder(x)

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

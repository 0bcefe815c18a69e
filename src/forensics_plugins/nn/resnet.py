"""The ResNet-50 trunk (torchvision's v1.5 layout and names), for inference.

``conv1``/``bn1``/``maxpool``, ``layer1..4`` of Bottleneck blocks (stride on the 3x3
convolution, ``downsample.0/1`` projection shortcuts), global average pool: the
(B, 2048) features before torchvision's ``fc``. State dict keys are torchvision's, so
a checkpoint trained with torchvision's ResNet loads as is.

Inference form (:meth:`ResNetTrunk.fold_batchnorm`): each eval BatchNorm folded into
the convolution before it; on the CPU in fp32 and bf16 each convolution then runs with
its ReLU, and each block's last convolution with the residual add and ReLU, fused by
oneDNN (``torch.ops.mkldnn._convolution_pointwise``). Every form is the same
function up to float rounding.
"""
from __future__ import annotations

import functools

import torch
from torch import nn

#: ResNet-50: Bottleneck blocks per stage
RESNET50_LAYERS = (3, 4, 6, 3)
EXPANSION = 4


class Bottleneck(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * EXPANSION, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


def _stage(inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    downsample = None
    if stride != 1 or inplanes != planes * EXPANSION:
        downsample = nn.Sequential(nn.Conv2d(inplanes, planes * EXPANSION, 1, stride=stride, bias=False),
                                   nn.BatchNorm2d(planes * EXPANSION))
    layers = [Bottleneck(inplanes, planes, stride, downsample)]
    layers += [Bottleneck(planes * EXPANSION, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class ResNetTrunk(nn.Module):
    """(B, 3, H, W) -> (B, 2048): ResNet-50 without its classifier."""

    feature_dim = 512 * EXPANSION

    def __init__(self, layers: tuple[int, int, int, int] = RESNET50_LAYERS):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = 64
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers)):
            setattr(self, f"layer{i + 1}", _stage(inplanes, planes, blocks, 1 if i == 0 else 2))
            inplanes = planes * EXPANSION
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.bn_folded = False

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        if self.bn_folded and x.device.type == "cpu" and x.dtype in _fused_dtypes():
            return self._trunk_fused_cpu(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    forward = trunk

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

    def _trunk_fused_cpu(self, x: torch.Tensor) -> torch.Tensor:
        """The BN-folded trunk with oneDNN conv+ReLU and conv+add+ReLU fusion (CPU)."""
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


@functools.lru_cache(maxsize=None)
def _fused_dtypes() -> tuple[torch.dtype, ...]:
    """The dtypes oneDNN's fused convolutions run here: fp32, and bf16 where the CPU has it natively."""
    op = getattr(torch.ops.mkldnn, "_convolution_pointwise", None)
    if op is None or not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
        return ()
    try:
        bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        bf16 = False
    return (torch.float32, torch.bfloat16) if bf16 else (torch.float32,)

"""Network towers the detectors share, written for this project.

LipFD's global branch and GenD both run a CLIP ViT image tower; LipFD's region
branch runs a ResNet-50 trunk. Owning these small modules (instead of building
them with open_clip and torchvision) keeps inference free of those libraries'
imports, lets the weights be loaded onto meta-device modules without a second
copy, and gives one place for the CPU fast paths (oneDNN linear and convolution
kernels, bf16 conversion that keeps no fp32 copy). See docs/performance.md.

* :mod:`.vit` - :class:`ViTConfig` (config as data) and :class:`ViT`;
* :mod:`.clip_keys` - checkpoint layouts to the ViT's own state dict
  (:func:`vit_from_openai_state`, :func:`vit_from_hf_clip_state`);
* :mod:`.resnet` - the ResNet-50 trunk, BatchNorm folding, fused oneDNN path;
* :mod:`.kernels` - which kernel runs a linear layer; releasing mapped weight pages.

Importing this package imports torch (the modules are ``nn.Module`` subclasses);
detectors import it only when they load.
"""
from .clip_keys import vit_config_from_hf_clip_state, vit_config_from_openai_state, vit_from_hf_clip_state, vit_from_openai_state
from .resnet import ResNetTrunk
from .vit import ViT, ViTConfig

__all__ = [
    "ResNetTrunk", "ViT", "ViTConfig", "vit_config_from_hf_clip_state", "vit_config_from_openai_state",
    "vit_from_hf_clip_state", "vit_from_openai_state",
]

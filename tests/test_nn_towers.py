"""The project's own towers (forensics_plugins.nn) against open_clip's and torchvision's on the same weights.

Small configurations with random weights keep these fast; the LipFD reference-vector
tests (test_lipfd_model.py) cover the full-size ViT-L/14 and ResNet-50 end to end.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from forensics_core.errors import WeightsError
from forensics_plugins.nn import ViT, ViTConfig, vit_config_from_hf_clip_state, vit_config_from_openai_state
from forensics_plugins.nn import vit_from_hf_clip_state, vit_from_openai_state
from forensics_plugins.nn.clip_keys import hf_source_keys, vit_shapes
from forensics_plugins.nn.kernels import linear, linear_add, set_linear_backend
from forensics_plugins.nn.resnet import ResNetTrunk
from forensics_plugins.nn.vit import OPENAI_CLIP
from lipfd_fixtures import V1

SMALL = ViTConfig(width=64, layers=3, heads=4, patch=8, image_size=32, mlp_dim=256, proj_dim=24)


def _randomise(module: torch.nn.Module, seed: int) -> None:
    """Every parameter random (LayerNorm gains and biases too), so that a wrong mapping shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            scale = 0.5 if p.dim() < 2 else p.shape[-1] ** -0.5
            p.copy_(torch.randn(p.shape, generator=g) * scale + (1.0 if name.endswith("ln_1.weight") else 0.0))


def _open_clip_tower(config: ViTConfig, act=None):
    oc = pytest.importorskip("open_clip")
    from open_clip.transformer import QuickGELU, VisionTransformer

    tower = VisionTransformer(image_size=config.image_size, patch_size=config.patch, width=config.width, layers=config.layers,
                              heads=config.heads, mlp_ratio=config.mlp_dim / config.width, output_dim=config.proj_dim,
                              act_layer=act or QuickGELU)
    _randomise(tower, 0)
    assert oc is not None
    return tower.eval()


def _to_hf_layout(openai_state: dict, prefix: str) -> dict:
    """What Hugging Face's CLIPVisionModel would hold for the same weights (q/k/v split)."""
    out = {}
    for own, value in openai_state.items():
        if own == "proj":
            out["visual_projection.weight"] = value.t().contiguous()
            continue
        keys = hf_source_keys(own)
        for key, part in zip(keys, value.chunk(len(keys), dim=0)):
            out[prefix + key] = part.clone()
    out[prefix + "embeddings.position_ids"] = torch.arange(openai_state["positional_embedding"].shape[0])[None]
    return out


@pytest.fixture(scope="module")
def reference():
    tower = _open_clip_tower(SMALL)
    x = torch.randn(3, 3, SMALL.image_size, SMALL.image_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = tower(x)
        tower_proj, tower.proj = tower.proj, None
        pooled = tower(x)  # ln_post(CLS): HF's pooler_output
        tower.proj = tower_proj
    state = {"encoder.visual." + k: v for k, v in tower.state_dict().items()}
    return {"state": state, "x": x, "expected": expected, "pooled": pooled}


def _build(config: ViTConfig, own_state: dict) -> ViT:
    with torch.device("meta"):
        vit = ViT(config)
    vit.load_state_dict(own_state, strict=True, assign=True)
    return vit.eval()


@pytest.mark.parametrize("mode", ["grad", "no_grad", "inference_form", "inference_form_aten"])
def test_vit_equals_open_clip(reference, mode):
    config = vit_config_from_openai_state(reference["state"], "encoder.visual.", heads=SMALL.heads)
    assert config == SMALL
    vit = _build(config, vit_from_openai_state(reference["state"], "encoder.visual.", config=config))
    if mode == "grad":
        vit.requires_grad_(True)
        out = vit(reference["x"])
        assert out.requires_grad
    else:
        previous = set_linear_backend("aten" if mode.endswith("aten") else "auto")
        try:
            if mode.startswith("inference_form"):
                vit.prepare_inference()
            with torch.inference_mode():
                out = vit(reference["x"])
        finally:
            set_linear_backend(previous)
    torch.testing.assert_close(out.detach(), reference["expected"], atol=2e-5, rtol=1e-5)


def test_gelu_tower_is_told_apart(reference):
    """The comparison can fail: open_clip with GELU (its plain ViT-L-14 config) gives other features."""
    gelu = _open_clip_tower(SMALL, act=torch.nn.GELU)
    with torch.no_grad():
        assert (gelu(reference["x"]) - reference["expected"]).abs().max() > 1e-3


def test_vit_from_hf_layout_equals_open_clip(reference):
    own = {k[len("encoder.visual."):]: v for k, v in reference["state"].items()}
    hf = _to_hf_layout(own, "feature_extractor.vision_model.")
    hf["model.linear.weight"] = torch.zeros(2, SMALL.width)  # a head outside the prefix is not looked at
    prefix = "feature_extractor.vision_model."
    config = vit_config_from_hf_clip_state(hf, prefix, heads=SMALL.heads)
    assert config == ViTConfig(**{**SMALL.__dict__, "proj_dim": None})
    vit = _build(config, vit_from_hf_clip_state(hf, prefix, config=config)).prepare_inference()
    with torch.inference_mode():
        torch.testing.assert_close(vit(reference["x"]), reference["pooled"], atol=2e-5, rtol=1e-5)
    with_proj = vit_from_hf_clip_state(hf, prefix, projection_key="visual_projection.weight", config=SMALL)
    torch.testing.assert_close(with_proj["proj"], own["proj"], atol=0, rtol=0)
    with torch.inference_mode():
        torch.testing.assert_close(_build(SMALL, with_proj)(reference["x"]), reference["expected"], atol=2e-5, rtol=1e-5)


def _meta_state(shapes: dict) -> dict:
    return {k: torch.empty(s, device="meta") for k, s in shapes.items()}


def test_configs_come_from_shapes():
    """ViT-L/14 from LipFD's checkpoint manifest; GenD's layout (HF, no projection) made from the same shapes."""
    manifest = json.loads((V1 / "checkpoint_keys.json").read_text())
    lipfd = _meta_state({k: v["shape"] for k, v in manifest.items()})
    assert vit_config_from_openai_state(lipfd, "encoder.visual.") == OPENAI_CLIP["ViT-L/14"]
    own = vit_from_openai_state(lipfd, "encoder.visual.")
    assert own["transformer.resblocks.23.attn.in_proj_weight"] is lipfd["encoder.visual.transformer.resblocks.23.attn.in_proj_weight"]
    hf = _to_hf_layout({k: torch.zeros(v.shape) for k, v in own.items() if k != "proj"}, "vision_model.")
    config = vit_config_from_hf_clip_state(hf, "vision_model.")
    assert (config.width, config.layers, config.heads, config.patch, config.image_size, config.mlp_dim, config.proj_dim) == \
        (1024, 24, 16, 14, 224, 4096, None)
    assert config.output_dim == 1024 and config.tokens == 257
    assert set(vit_from_hf_clip_state(hf, "vision_model.")) == set(vit_shapes(config))


def test_strict_mapping_names_the_checkpoint_keys(reference):
    state = dict(reference["state"])
    del state["encoder.visual.transformer.resblocks.1.mlp.c_fc.bias"]
    state["encoder.visual.transformer.resblocks.1.extra"] = torch.zeros(1)
    state["encoder.visual.ln_post.weight"] = torch.zeros(7)
    with pytest.raises(WeightsError) as info:
        vit_from_openai_state(state, "encoder.visual.", config=SMALL, source="ckpt.pth")
    msg = str(info.value)
    assert "ckpt.pth" in msg and "missing keys: encoder.visual.transformer.resblocks.1.mlp.c_fc.bias" in msg
    assert "unexpected keys: encoder.visual.transformer.resblocks.1.extra" in msg
    assert "encoder.visual.ln_post.weight: checkpoint (7,) vs model (64,)" in msg

    own = {k[len("encoder.visual."):]: v for k, v in reference["state"].items()}
    hf = _to_hf_layout(own, "vm.")
    del hf["vm.encoder.layers.2.self_attn.k_proj.bias"]
    hf["vm.encoder.layers.0.self_attn.v_proj.weight"] = torch.zeros(64, 32)
    with pytest.raises(WeightsError) as info:
        vit_from_hf_clip_state(hf, "vm.", config=ViTConfig(**{**SMALL.__dict__, "proj_dim": None}))
    msg = str(info.value)
    assert "missing keys: vm.encoder.layers.2.self_attn.k_proj.bias" in msg
    assert "vm.encoder.layers.0.self_attn.q_proj.weight (+k, v): checkpoint q/k/v" in msg
    with pytest.raises(WeightsError, match=r"no wrong\.embeddings\.patch_embedding\.weight"):
        vit_config_from_hf_clip_state(hf, "wrong.")


def test_config_is_validated():
    with pytest.raises(ValueError, match="activation 'gelu' is not implemented"):
        ViTConfig(width=64, layers=1, heads=4, patch=8, image_size=32, mlp_dim=256, act="gelu")
    with pytest.raises(ValueError, match="not divisible by heads"):
        ViTConfig(width=64, layers=1, heads=5, patch=8, image_size=32, mlp_dim=256)
    with pytest.raises(ValueError, match="not a multiple of patch"):
        ViTConfig(width=64, layers=1, heads=4, patch=7, image_size=32, mlp_dim=256)


def test_kernels_agree_with_f_linear():
    g = torch.Generator().manual_seed(3)
    x, w, b, r = (torch.randn(s, generator=g) for s in ((5, 7, 32), (48, 32), (48,), (5, 7, 48)))
    with torch.inference_mode():
        ref = torch.nn.functional.linear(x, w, b)
        torch.testing.assert_close(linear(x, w, b), ref)
        torch.testing.assert_close(linear(x, w, b, silu=True), torch.nn.functional.silu(ref))
        torch.testing.assert_close(linear_add(x, w, b, r), r + ref)
        torch.testing.assert_close(linear(x[:, :1], w, b), ref[:, :1])  # a strided view


@pytest.mark.parametrize("folded", [False, True])
def test_resnet_trunk_equals_torchvision(folded):
    tv = pytest.importorskip("torchvision")
    net = tv.models.resnet50(weights=None).eval()
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):  # non-trivial eval statistics, so folding is exercised
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    net.fc = torch.nn.Identity()
    state = {k: v.clone() for k, v in net.state_dict().items() if not k.startswith("fc.")}  # folding writes in place
    with torch.device("meta"):
        trunk = ResNetTrunk()
    trunk.load_state_dict(state, strict=True, assign=True)
    trunk.eval()
    if folded:
        trunk.fold_batchnorm()
    x = torch.randn(2, 3, 64, 64, generator=g)
    with torch.inference_mode():
        expected = net(x)
        torch.testing.assert_close(trunk(x), expected, atol=1e-6 * expected.abs().max().item(), rtol=1e-5)
        torch.testing.assert_close(trunk(x.contiguous(memory_format=torch.channels_last)), expected,
                                   atol=1e-6 * expected.abs().max().item(), rtol=1e-5)


def test_lipfd_archs_build_on_meta():
    from forensics_plugins.lipfd.model import LipFDNet

    with torch.device("meta"):
        for arch, dim in (("ViT-L/14", 768), ("ViT-B/16", 512), ("ViT-B/32", 512)):
            net = LipFDNet(arch)
            assert net.global_dim == dim and net.backbone.fc.in_features == 2048 + dim
        if __import__("importlib").util.find_spec("open_clip") is not None:
            assert LipFDNet("RN50").global_dim == 1024  # open_clip's ModifiedResNet, imported for it alone
    with pytest.raises(ValueError, match="unknown CLIP arch 'ViT-H/14'"):
        LipFDNet("ViT-H/14")


def test_building_lipfd_imports_neither_open_clip_nor_torchvision():
    code = (
        "import sys, torch\n"
        "from forensics_plugins.lipfd import detector, pipeline\n"
        "from forensics_plugins.lipfd.model import LipFDNet\n"
        "with torch.device('meta'):\n"
        "    net = LipFDNet()\n"
        "print([m for m in ('open_clip', 'torchvision', 'timm') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == "[]"

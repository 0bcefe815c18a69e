"""Checkpoint reading: strict, safe (weights_only / safetensors), with errors that name the problem."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from forensics_core import WeightsError
from forensics_plugins.lipfd.model import LipFDNet
from forensics_plugins.lipfd.weights import check_compatible, check_finite, convert, read_state_dict, to_model_keys
from lipfd_standin import standin_state_dict


@pytest.fixture(scope="module")
def small_state():
    """Stand-in tensors for every key LipFD inference needs plus two text-tower keys (fingerprint-checked)."""
    import json

    from lipfd_standin import DATA

    keys = [k for k in json.loads((DATA / "checkpoint_keys.json").read_text())
            if not k.startswith("encoder.") or k.startswith("encoder.visual.") or k in ("encoder.logit_scale", "encoder.text_projection")]
    return standin_state_dict(keys)


@pytest.fixture(scope="module")
def meta_model():
    with torch.device("meta"):
        return LipFDNet()


def test_released_format_loads_and_ignores_text_tower(tmp_path, small_state, meta_model):
    path = tmp_path / "ckpt.pth"
    torch.save({"model": small_state, "total_steps": 3}, path)
    state = to_model_keys(read_state_dict(path))
    assert "encoder.logit_scale" not in state and "encoder.text_projection" not in state
    assert len(state) == len(small_state) - 2
    check_compatible(meta_model, state, path)  # no error: every required key with its shape
    assert "encoder.conv1.weight" in state and "backbone.fc.weight" in state


def test_missing_unexpected_and_mismatched_keys_are_named(tmp_path, small_state, meta_model):
    broken = dict(small_state)
    del broken["backbone.fc.bias"]
    broken["backbone.extra.weight"] = torch.zeros(2)
    broken["conv1.weight"] = torch.zeros(3, 3, 3, 3)
    path = tmp_path / "broken.pth"
    torch.save({"model": broken}, path)
    with pytest.raises(WeightsError) as info:
        check_compatible(meta_model, to_model_keys(read_state_dict(path)), path)
    msg = str(info.value)
    assert "missing keys: backbone.fc.bias" in msg
    assert "unexpected keys: backbone.extra.weight" in msg
    assert "conv1.weight: checkpoint (3, 3, 3, 3) vs model (3, 3, 5, 5)" in msg


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pth"
    torch.save({"model": {"conv1.weight": torch.zeros(1)}, "payload": Exploit()}, path)
    assert not marker.exists()
    with pytest.raises(WeightsError) as info:
        read_state_dict(path)
    assert "refused" in str(info.value)
    assert not marker.exists(), "unpickling ran the payload"

    raw = tmp_path / "evil_plain.pkl.pth"  # an old-style plain pickle, not a zip
    raw.write_bytes(pickle.dumps(Exploit()))
    marker.unlink(missing_ok=True)
    with pytest.raises(WeightsError):
        read_state_dict(raw)
    assert not marker.exists()


def test_truncated_and_wrong_files(tmp_path, small_state):
    good = tmp_path / "good.pth"
    torch.save({"model": {k: small_state[k] for k in list(small_state)[:5]}}, good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(WeightsError, match="cannot read the checkpoint"):
        read_state_dict(truncated)
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(WeightsError):
        read_state_dict(text)
    with pytest.raises(WeightsError, match="not found"):
        read_state_dict(tmp_path / "absent.pth")
    with zipfile.ZipFile(tmp_path / "list.pth", "w"):
        pass
    with pytest.raises(WeightsError):
        read_state_dict(tmp_path / "list.pth")
    bad_st = tmp_path / "bad.safetensors"
    bad_st.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(WeightsError, match="safetensors"):
        read_state_dict(bad_st)


def test_convert_keeps_only_inference_tensors(tmp_path, small_state):
    src = tmp_path / "ckpt.pth"
    torch.save({"model": small_state, "optimizer": {"state": {}}}, src)
    dst = tmp_path / "lipfd.safetensors"
    mask = os.umask(0o027)
    try:
        info = convert(src, dst)
    finally:
        os.umask(mask)
    assert info["dropped"] == 2 and dst.is_file() and not (tmp_path / "lipfd.safetensors.part").exists()
    assert dst.stat().st_mode & 0o777 == 0o640  # the umask's mode, as any file a program writes (safetensors: 0600)
    renamed = tmp_path / "converted.pth"  # safetensors under another name is still read as safetensors
    os.link(dst, renamed)
    assert set(read_state_dict(renamed)) == set(read_state_dict(dst))
    with pytest.raises(WeightsError, match="must be named \\*.safetensors"):
        convert(src, tmp_path / "out.pth")
    converted = read_state_dict(dst)
    assert set(converted) == {k for k in small_state if not k.startswith("encoder.") or k.startswith("encoder.visual.")}
    for key, value in converted.items():
        assert torch.equal(value.reshape(small_state[key].shape), small_state[key]), key


def test_weights_that_are_not_checkpoints_are_named(tmp_path):
    """Issue 14, item 13: a WAV given as --weights gave `IndexError: pop from empty list`."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from media_corpus import make_clip

    cases = {"voice.wav": "a RIFF file", "clip.mp4": "an MP4/MOV media file", "page.pth": "an HTML/XML page"}
    make_clip(tmp_path / "voice.wav", vcodec=None, seconds=0.3)
    make_clip(tmp_path / "clip.mp4", seconds=0.3, size=(64, 64))
    (tmp_path / "page.pth").write_text("<!DOCTYPE html><html><title>Sign in</title></html>")
    for name, what in cases.items():
        with pytest.raises(WeightsError, match=f"not a checkpoint: it looks like {what}") as info:
            read_state_dict(tmp_path / name)
        assert "--audio" in info.value.hint


def test_nan_and_inf_weights_are_named(tmp_path):
    state = {"a.weight": torch.ones(4, 4), "b.weight": torch.ones(10), "c.bias": torch.ones(3, dtype=torch.float16),
             "d.num_batches_tracked": torch.tensor(3), "e.weight": torch.full((4,), 60000.0, dtype=torch.float16)}
    check_finite(state, "ok.pth")  # a sum of large fp16 values overflows; the values do not
    state["b.weight"][7] = float("nan")
    state["c.bias"][0] = float("-inf")
    with pytest.raises(WeightsError) as info:
        check_finite(state, "bad.pth")
    assert "2 tensors hold NaN or infinite values: b.weight, c.bias" in info.value.message


@pytest.mark.slow
def test_a_checkpoint_with_nan_weights_is_refused_at_load(tmp_path, small_state):
    """Issue 14, item 9: it loaded, and every file then ended `internal_error` after a full analysis."""
    from forensics_core import load_model

    poisoned = dict(small_state)
    poisoned["backbone.fc.weight"] = small_state["backbone.fc.weight"].clone()
    poisoned["backbone.fc.weight"][0, 0] = float("nan")
    path = tmp_path / "nan.pth"
    torch.save({"model": poisoned}, path)
    with pytest.raises(WeightsError, match="1 tensors hold NaN or infinite values: backbone.fc.weight"):
        load_model("LIPFD-V1", weights=path, device="cpu")


def test_cli_convert_and_wrong_checkpoint_exit_codes(tmp_path, small_state):
    src = tmp_path / "ckpt.pth"
    partial = {k: v for k, v in small_state.items() if not k.startswith("backbone.layer4")}
    torch.save({"model": partial}, src)
    out = subprocess.run([sys.executable, "-m", "forensics_core", "convert", "LIPFD-V1", str(src), str(tmp_path / "o.safetensors")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 4, out.stderr
    assert "missing keys: backbone.layer4" in out.stderr and not (tmp_path / "o.safetensors").exists()
    assert os.listdir(tmp_path) == ["ckpt.pth"]
    named = subprocess.run([sys.executable, "-m", "forensics_core", "convert", "LIPFD-V1", str(src), str(tmp_path / "o.pth")],
                           capture_output=True, text=True, timeout=300)
    assert named.returncode == 2 and "*.safetensors" in named.stderr and "o.safetensors" in named.stderr
    assert os.listdir(tmp_path) == ["ckpt.pth"]

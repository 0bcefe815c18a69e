"""GenD weights: the pinned card, safetensors only, the released layout checked from the header."""
from __future__ import annotations

import functools
import http.server
import json
import threading

import pytest

from forensics_core.errors import WeightsError
from forensics_core.manifest import builtin_manifest
from forensics_plugins.gend.weights import PROJECTION, check_layout, expected_layout, read_state_dict, validate_checkpoint
from gend_fixtures import G1


def test_card_pins_the_released_file():
    card = builtin_manifest().card("GEND-CLIP-L14")
    w = card.weights
    assert w.url == "https://huggingface.co/yermandy/GenD_CLIP_L_14/resolve/main/model.safetensors"
    assert (w.size, w.sha256) == (1_215_928_160, "d76f0bdfd74a29fe1b1c1b84a80ac92486993e426878e8c7a3944281fbb96833")
    assert (w.format, w.env_var) == ("safetensors", "FORENSICS_GEND_WEIGHTS")
    assert card.modalities == ["video", "image"]
    assert card.score_bands is not None and card.score_bands.low < card.score_bands.high


def test_expected_layout_is_the_released_manifest():
    manifest = json.loads((G1 / "manifest.json").read_text())
    layout = expected_layout()
    assert set(layout) == set(manifest) and len(layout) == 394
    assert all(tuple(manifest[k]["shape"]) == layout[k] and manifest[k]["dtype"] == "float32" for k in manifest)


def _tiny_safetensors(path, state):
    from safetensors.torch import save_file

    save_file(state, str(path), metadata={"format": "pt"})
    return path


def test_pickle_is_refused_with_a_hint(tmp_path):
    import torch

    pth = tmp_path / "model.pth"
    torch.save({"model.linear.bias": torch.zeros(2)}, pth)
    with pytest.raises(WeightsError) as info:
        read_state_dict(pth)
    assert "safetensors only" in info.value.message and "forensics pull GEND-CLIP-L14" in info.value.hint
    renamed = tmp_path / "looks_safe.safetensors"
    renamed.write_bytes(pth.read_bytes())  # a zip pickle under a safetensors name
    with pytest.raises(WeightsError, match="safetensors only"):
        validate_checkpoint(renamed)


def test_wrong_layout_names_missing_unexpected_and_shapes(tmp_path):
    import torch

    path = _tiny_safetensors(tmp_path / "lipfd_like.safetensors",
                             {"encoder.visual.conv1.weight": torch.zeros(2, 3), "model.linear.weight": torch.zeros(3, 1024)})
    with pytest.raises(WeightsError) as info:
        validate_checkpoint(path)
    msg = info.value.message
    assert "does not fit GEND-CLIP-L14" in msg and "missing keys" in msg and "unexpected keys: encoder.visual.conv1.weight" in msg
    assert "model.linear.weight: file (3, 1024) F32 vs F32 (2, 1024)" in msg


def test_projection_may_be_absent_and_dtype_is_checked():
    header = {k: {"dtype": "F32", "shape": list(s)} for k, s in expected_layout().items()}
    check_layout(header, "full")
    del header[PROJECTION]
    check_layout(header, "without the unused projection")
    header["model.linear.bias"]["dtype"] = "F16"
    with pytest.raises(WeightsError, match="shape/dtype mismatches"):
        check_layout(header, "half head")


@pytest.mark.parametrize("content", [b"", b"\x01\x02", b"\xff" * 8 + b"{}", b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!"])
def test_truncated_or_garbage_files(tmp_path, content):
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    with pytest.raises(WeightsError) as info:
        validate_checkpoint(path)
    assert "safetensors" in info.value.message


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        read_state_dict(tmp_path / "absent.safetensors")


def test_non_finite_tensor_is_refused(tmp_path, monkeypatch):
    """Header fine, a NaN inside: refused after reading (layout check stubbed to the two tensors written)."""
    import torch

    import forensics_plugins.gend.weights as gw

    path = _tiny_safetensors(tmp_path / "nan.safetensors", {"model.linear.bias": torch.tensor([0.0, float("nan")])})
    monkeypatch.setattr(gw, "check_layout", lambda header, source: None)
    with pytest.raises(WeightsError, match="NaN or infinity"):
        gw.read_state_dict(path)


class _OneFile(http.server.BaseHTTPRequestHandler):
    def __init__(self, *args, payload: bytes, **kwargs):
        self.payload = payload
        super().__init__(*args, **kwargs)

    def do_GET(self):  # noqa: N802 - http.server API
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, *args):
        pass


def test_pull_fetches_and_verifies_through_the_host_weights_code(tmp_path, monkeypatch):
    """The card's source, pointed at a local server: downloaded under the card's file name and sha256-checked."""
    import hashlib

    from forensics_core.weights import pull, resolve_weights

    monkeypatch.setenv("FORENSICS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FORENSICS_GEND_WEIGHTS", raising=False)
    payload = b"pretend safetensors " * 1000
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_OneFile, payload=payload))
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        card = builtin_manifest().card("GEND-CLIP-L14")
        local = card.weights.model_copy(update={"url": f"http://127.0.0.1:{srv.server_address[1]}/model.safetensors",
                                                "sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload)})
        path = pull(card.id, local, progress=False)
        assert path.name == "gend_clip_l14.safetensors" and path.read_bytes() == payload
        assert resolve_weights(card.id, local) == path
        bad = local.model_copy(update={"sha256": "0" * 64, "filename": "other.safetensors"})
        with pytest.raises(WeightsError):
            pull(card.id, bad, progress=False)
        assert not (tmp_path / "home" / "weights" / "other.safetensors").exists()
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def test_env_var_names_the_weights(tmp_path, monkeypatch):
    from forensics_core.weights import resolve_weights

    card = builtin_manifest().card("GEND-CLIP-L14")
    target = tmp_path / "mine.safetensors"
    target.write_bytes(b"x")
    monkeypatch.setenv("FORENSICS_GEND_WEIGHTS", str(target))
    assert resolve_weights(card.id, card.weights) == target


def test_tensor_data_beyond_the_end_of_the_file(tmp_path, monkeypatch):
    """A header that promises more bytes than the file holds (a truncated download) is refused before reading."""
    import torch

    import forensics_plugins.gend.weights as gw

    path = _tiny_safetensors(tmp_path / "cut.safetensors", {"model.linear.weight": torch.ones(2, 1024)})
    path.write_bytes(path.read_bytes()[:-100])
    monkeypatch.setattr(gw, "check_layout", lambda header, source: None)
    with pytest.raises(WeightsError, match="outside the file"):
        gw.read_state_dict(path)


def test_check_weights_is_the_header_check(tmp_path):
    """What `forensics pull` calls on a download before it enters the cache (no model, no torch load)."""
    from forensics_plugins.gend.detector import GenDDetector

    bad = tmp_path / "page.safetensors"
    bad.write_bytes(b"<html>not weights</html>")
    with pytest.raises(WeightsError):
        GenDDetector.check_weights(bad)

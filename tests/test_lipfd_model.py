"""LIPFD-V1 end to end with the stand-in checkpoint, against the reference outputs of v1."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from forensics_core import DetectionResult
from lipfd_fixtures import V1

pytestmark = pytest.mark.slow

LOGIT_TOL, SCORE_TOL, WEIGHT_TOL = 1e-4, 2e-5, 2e-5


def check_against_reference(result: DetectionResult, expected: dict) -> None:
    d = result.to_dict()
    assert d["status"] == "ok"
    assert [w["start_frame"] for w in d["windows"]] == expected["window_start_frames"]
    assert [w["mel_columns"] for w in d["windows"]] == [[int(b), int(e)] for b, e in zip(expected["mel_col_begin"], expected["mel_col_end"])]
    np.testing.assert_allclose([w["logit"] for w in d["windows"]], expected["logits"], atol=LOGIT_TOL, rtol=0)
    np.testing.assert_allclose(d["metrics"]["window_scores"], expected["scores"], atol=SCORE_TOL, rtol=0)
    assert d["metrics"]["final_average_score"] == pytest.approx(expected["mean_score"], abs=SCORE_TOL)
    w0 = d["windows"][0]["region_weights"]
    np.testing.assert_allclose([w0["full"], w0["face"], w0["lip"]], expected["region_weights_w0"], atol=WEIGHT_TOL, rtol=0)
    per_window = np.array([[w["region_weights"][s] for s in ("full", "face", "lip")] for w in d["windows"]])  # (N,S,L)
    np.testing.assert_allclose(per_window.max(axis=1), expected["weights_max"], atol=WEIGHT_TOL, rtol=0)
    np.testing.assert_allclose(per_window[:, 0], expected["weights_org"], atol=WEIGHT_TOL, rtol=0)
    np.testing.assert_allclose(per_window.sum(axis=1), 1.0, atol=1e-5)


def test_end_to_end_from_mp4_matches_reference(v1_result, v1_expected):
    check_against_reference(v1_result, v1_expected)


def test_from_separate_wav_matches_reference(lipfd, v1_expected):
    check_against_reference(lipfd.analyze(V1 / "v1.mp4", audio_path=str(V1 / "v1.wav")), v1_expected)


def test_result_has_the_seed_design_fields(v1_result):
    d = v1_result.to_dict()
    for key in ("prediction", "confidence", "processing_time", "frames_analyzed", "frame_predictions", "metrics"):
        assert key in d
    assert d["prediction"] == ("FAKE" if d["score"] >= 0.5 else "REAL")
    assert d["confidence"] == pytest.approx(d["score"] if d["prediction"] == "FAKE" else 1 - d["score"])
    assert d["frames_analyzed"] == 50
    assert [p["index"] for p in d["frame_predictions"]] == list(range(10))
    assert set(d["metrics"]) == {"final_average_score", "window_scores"}
    w = d["windows"][1]
    assert (w["start_frame"], w["end_frame"]) == (16, 20)
    assert (w["start_time"], w["end_time"]) == pytest.approx((16 / 25, 21 / 25))
    assert set(d["timings"]) >= {"probe", "audio", "mel", "frame_decode", "window_build", "global_branch", "region_branch"}
    assert d["options"]["batch_size"] == 10  # fp32's region batch, recorded as used


def test_seed_integration_example_runs_as_written(standin_checkpoint):
    """The seed design's integration example, with the host's import paths."""
    code = f"""
from forensics_core import load_model

model = load_model('LIPFD-V1', weights={str(standin_checkpoint)!r}, device='cpu')
result = model.analyze({str(V1 / 'v1.mp4')!r})
print(result['prediction'], result['confidence'])
for i, score in enumerate(result['metrics']['window_scores']):
    print(i, round(score, 4))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[0] in {"REAL", "FAKE"} and len(lines) == 11


def test_cli_analyze_json(standin_checkpoint, v1_expected, tmp_path):
    env = {**os.environ, "FORENSICS_HOME": str(tmp_path / "home")}
    out = subprocess.run([sys.executable, "-m", "forensics_core", "analyze", str(V1 / "v1.mp4"), "--model", "LIPFD-V1",
                          "--weights", str(standin_checkpoint), "--audio", str(V1 / "v1.wav"), "--device", "cpu", "--json"],
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr
    result = DetectionResult.model_validate(json.loads(out.stdout))
    check_against_reference(result, v1_expected)
    import jsonschema

    schema = json.loads(subprocess.run([sys.executable, "-m", "forensics_core", "schema"], capture_output=True, text=True, check=True).stdout)
    jsonschema.validate(json.loads(out.stdout), schema)


def test_load_is_idempotent(lipfd, standin_checkpoint):
    net = lipfd.net
    assert lipfd.load(device="cpu", precision="fp32", weights=standin_checkpoint) is lipfd
    assert lipfd.net is net
    info = lipfd.describe()
    assert info["loaded"] and info["card"]["id"] == "LIPFD-V1" and "window_len" in info["options_schema"]["properties"]


def test_feature_size_comes_from_the_encoder():
    import torch

    from forensics_plugins.lipfd.model import LipFDNet

    with torch.device("meta"):
        small = LipFDNet("ViT-B/32")
    assert small.global_dim == 512 and small.backbone.fc.in_features == 2048 + 512


def test_quickgelu_is_active(lipfd):
    # the tower is the project's own (forensics_plugins.nn.vit); test_nn_towers.py keeps it equal to
    # open_clip's QuickGELU tower and shows a GELU tower differs
    assert lipfd.net.encoder.config.act == "quick_gelu"
    assert all(b.mlp.folded for b in lipfd.net.encoder.transformer.resblocks)  # silu(1.702 x) / 1.702 == QuickGELU

"""GEND-CLIP-L14 end to end on reference vector g1 with the stand-in weights: API and CLI.

Tolerances from the reference: feature and logits 1e-4, p_fake 3e-5 (measured here: about 1e-6).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from gend_fixtures import G1

pytestmark = pytest.mark.slow

VARIANTS = {"auto": (None, "feature.npy"), 256: ("variant_target_size_256", "feature_256.npy")}


def _part(expected, key):
    return expected if key is None else expected[key]


@pytest.mark.parametrize("crop_size", list(VARIANTS))
def test_fidelity_through_the_python_api(gend, g1_expected, g1_landmarks, crop_size):
    key, feature_file = VARIANTS[crop_size]
    part = _part(g1_expected, key)
    result = gend.analyze(G1 / "input.png", landmarks=g1_landmarks, crop_size=crop_size)
    assert result.status == "ok" and result.frames_analyzed == 1 and len(result.windows) == 1
    window = result.windows[0].model_dump()
    np.testing.assert_allclose(window["logits"], part["logits"], rtol=0, atol=1e-4)
    assert abs(result.score - part["p_fake"]) <= 3e-5
    assert result["metrics"]["window_scores"] == [result.score]
    assert window["crop_size"] == part["alignment"]["output_size_wh"][0]
    assert window["inliers"] == part["alignment"]["lmeds_inlier_mask"]
    assert (window["start_frame"], window["start_time"], window["track"]) == (0, 0.0, 0)
    assert result.prediction == ("FAKE" if result.score >= 0.5 else "REAL")
    assert result.media["modalities"] == ["image"]


def test_pooled_feature_equals_reference(gend, g1_expected, g1_landmarks):
    import torch

    from forensics_plugins.gend.align import align_face
    from forensics_plugins.gend.frames import read_image
    from forensics_plugins.gend.preprocess import model_input

    image = read_image(G1 / "input.png")
    x = torch.from_numpy(np.stack([model_input(align_face(image, g1_landmarks, size).crop) for size in VARIANTS]))
    with torch.inference_mode():
        features = gend.net.features(x).numpy()
    for row, (key, feature_file) in zip(features, VARIANTS.values()):
        np.testing.assert_allclose(row, np.load(G1 / feature_file), rtol=0, atol=1e-4)
        assert abs(float(np.linalg.norm(row)) - _part(g1_expected, key)["pooled_feature"]["l2_norm"]) < 1e-3


@pytest.mark.parametrize("crop_size", list(VARIANTS))
def test_fidelity_through_the_cli(gend_weights, g1_expected, g1_landmarks, crop_size, tmp_path):
    part = _part(g1_expected, VARIANTS[crop_size][0])
    cmd = [sys.executable, "-m", "forensics_core", "analyze", str(G1 / "input.png"), "--model", "GEND-CLIP-L14",
           "--weights", str(gend_weights), "--device", "cpu", "--option", f"landmarks={json.dumps(g1_landmarks)}",
           "--option", f"crop_size={crop_size}", "--json"]
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert row["status"] == "ok" and row["detector_id"] == "GEND-CLIP-L14"
    np.testing.assert_allclose(row["windows"][0]["logits"], part["logits"], rtol=0, atol=1e-4)
    assert abs(row["score"] - part["p_fake"]) <= 3e-5
    assert row["options"]["crop_size"] == crop_size


def test_video_with_given_landmarks_analyses_those_frames(gend, g1_landmarks, tmp_path):
    """The photo as a 3 s video: the landmark frames are the windows, each frame scored like the photo."""
    from media_corpus import ffmpeg

    clip = tmp_path / "astronaut.mp4"
    ffmpeg(["-loop", "1", "-i", str(G1 / "input.png"), "-t", "3", "-r", "25", "-c:v", "libx264", "-qp", "0",
                    "-pix_fmt", "yuv444p", str(clip)])
    marks = {50: g1_landmarks, 10: g1_landmarks, 11: g1_landmarks}
    result = gend.analyze(clip, landmarks=marks, threshold=0.3)
    assert result.status == "ok" and [w.start_frame for w in result.windows] == [10, 11, 50]
    assert [w.index for w in result.windows] == [0, 1, 2]
    assert result.windows[0].start_time == pytest.approx(0.4) and result.windows[2].end_time == pytest.approx(51 / 25)
    assert result.score == pytest.approx(np.mean([w.score for w in result.windows]))
    assert result.media["fps"] == pytest.approx(25.0) and result.media["frame_count"] == 75
    # every face of this still clip scores alike, above 0.3: frames 10-11 make one segment, frame 50 another
    assert all(w.score > 0.3 for w in result.windows)
    (a, b) = sorted(result.segments)
    assert a[:2] == pytest.approx([0.4, 0.48]) and b[:2] == pytest.approx([2.0, 2.04])
    assert result.segments[0][2] == max(w.score for w in result.windows)
    assert gend.analyze(clip, landmarks=marks, threshold=0.99).segments == []


def test_landmarks_option_errors_name_the_fix(gend, g1_landmarks, good_clip):
    from forensics_core.errors import InvalidOptionsError

    with pytest.raises(InvalidOptionsError, match="mapping frame index"):
        gend.analyze(good_clip, landmarks=g1_landmarks)
    with pytest.raises(InvalidOptionsError, match="beyond the video"):
        gend.analyze(good_clip, landmarks={100000: g1_landmarks})
    with pytest.raises(InvalidOptionsError, match="one frame, 0"):
        gend.analyze(G1 / "input.png", landmarks={3: g1_landmarks})
    with pytest.raises(InvalidOptionsError, match="can be aligned"):
        gend.analyze(G1 / "input.png", landmarks=[[5.0, 5.0]] * 5)


def test_evidence_is_the_face_the_model_read(gend, g1_landmarks):
    """Recomputed from the media by an unloaded detector, and offered during the analysis: the reference 224 image."""
    from PIL import Image

    from forensics_core import get_detector
    from forensics_core.evidence_images import capturing

    with capturing(convert=lambda image: image) as capture:
        result = gend.analyze(G1 / "input.png", landmarks=g1_landmarks)
    offered = capture.get("GEND-CLIP-L14", str(G1 / "input.png"))
    reference = np.asarray(Image.open(G1 / "aligned_224.png").convert("RGB"))[:, :, ::-1]  # evidence images are BGR
    assert list(offered) == [(0, "input")] and np.array_equal(offered[(0, "input")].image, reference)
    unloaded = get_detector("GEND-CLIP-L14")
    (image,) = unloaded.evidence(G1 / "input.png", result.to_dict())
    assert not unloaded.loaded and image.window_index == 0 and image.kind == "input"
    assert np.array_equal(image.image, reference) and "p_fake" in image.caption
    assert unloaded.evidence(G1 / "input.png", result.to_dict(), windows=[5]) == []


def test_auto_precision_and_weights_identity(gend_weights, g1_expected, g1_landmarks):
    """``precision="auto"`` resolves as for LIPFD-V1 (bf16 on a CPU with native bf16, else fp32), the
    result names the choice, stays within LIPFD-V1's documented bf16 bound, and carries the weights' sha256."""
    import hashlib

    from forensics_core import load_model
    from forensics_core.detector import resolve_precision

    detector = load_model("GEND-CLIP-L14", weights=gend_weights, device="cpu", precision="auto")
    try:
        result = detector.analyze(G1 / "input.png", landmarks=g1_landmarks)
    finally:
        detector.unload()
    assert result.status == "ok" and result.precision == resolve_precision("auto", "cpu")
    deviation = abs(result.score - g1_expected["p_fake"])
    assert deviation <= (1e-2 if result.precision == "bf16" else 3e-5), deviation
    digest = hashlib.sha256()
    with open(gend_weights, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    assert result.weights is not None and result.weights.sha256 == digest.hexdigest()
    assert result.weights.path == os.path.realpath(gend_weights) and result.weights.size == os.path.getsize(gend_weights)

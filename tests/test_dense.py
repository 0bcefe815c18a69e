"""LIPFD-V1 dense sampling end to end (stand-in weights): windows over the whole video, batched
through the model while a thread decodes, equal to the reference where the windows coincide."""
from __future__ import annotations

import numpy as np
import pytest

from forensics_core.progress import reporting
from forensics_core.segments import segments_from_windows
from lipfd_fixtures import V1
from test_lipfd_model import LOGIT_TOL, SCORE_TOL
from test_progress import Recording

pytestmark = pytest.mark.slow


def test_dense_with_spread_starts_equals_the_reference(lipfd, v1_expected):
    """On v1 a window every 16 frames starts where the 10 spread windows do: same windows, same
    logits, although they went through the model in batches of 4, 4 and 2 from a decoding thread."""
    rec = Recording()
    with reporting(rec):
        result = lipfd.analyze(V1 / "v1.mp4", sampling="dense", stride=16, window_batch=4)
    d = result.to_dict()
    assert [w["start_frame"] for w in d["windows"]] == v1_expected["window_start_frames"]
    np.testing.assert_allclose([w["logit"] for w in d["windows"]], v1_expected["logits"], atol=LOGIT_TOL, rtol=0)
    assert d["score"] == pytest.approx(np.mean(d["metrics"]["window_scores"]))  # the video score: mean of the windows
    assert d["score"] == pytest.approx(v1_expected["mean_score"], abs=SCORE_TOL)
    assert d["options"]["sampling"] == "dense" and d["options"]["stride"] == 16
    assert rec.stages() == ["probe", "faces", "audio", "frames+model"]
    assert [e for e in rec.events if e[0] == "stage"][-1] == ("stage", "frames+model", 150, "frame")
    assert rec.advanced("frames+model") == 150  # frames reached, up to the last (after the last window's)
    # windows 16 frames apart do not touch: every window at or above a threshold is a segment of its own
    lowest = min(w["score"] for w in d["windows"])
    assert len(segments_from_windows(d["windows"], lowest)) == 10
    assert d["segments"] == segments_from_windows(d["windows"], d["threshold"])


def test_dense_default_stride_covers_every_frame_and_merges_touching_windows(lipfd, tmp_path):
    from media_corpus import make_clip

    clip = make_clip(tmp_path / "touching.mp4", seconds=1.2, size=(160, 120))  # 30 frames: 6 windows of 5
    result = lipfd.analyze(clip, sampling="dense", framing="full").to_dict()  # a drawn face: the whole frame
    windows = result["windows"]
    assert [(w["start_frame"], w["end_frame"]) for w in windows] == [(5 * i, 5 * i + 4) for i in range(6)]
    assert windows[-1]["end_time"] == pytest.approx(1.2) and result["frames_analyzed"] == 30
    assert result["segments"] == segments_from_windows(windows, result["threshold"])
    lowest = min(w["score"] for w in windows)
    assert segments_from_windows(windows, lowest) == [[0.0, pytest.approx(1.2), max(w["score"] for w in windows)]]

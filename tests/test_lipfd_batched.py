"""The scan path for accelerators (lipfd.batched), run on the CPU: equal to analyze() file by file."""
from __future__ import annotations

import numpy as np
import pytest

from forensics_core.errors import MediaProcessingError
from lipfd_fixtures import V1

pytestmark = pytest.mark.slow


def test_window_tensors_on_the_device_path_equal_the_reference_builder():
    import torch

    from forensics_plugins.lipfd.batched import window_tensors_on
    from forensics_plugins.lipfd.pipeline import prepare
    from forensics_plugins.lipfd.options import LipFDOptions
    from forensics_plugins.lipfd.windows import window_tensors

    prepared = prepare(V1 / "v1.mp4", LipFDOptions())
    images = prepared.images[:3]
    for distinct in (False, True):
        ref = window_tensors(images, window_len=5, distinct_frame_crops=distinct)
        got = window_tensors_on(images, "cpu", window_len=5, distinct_frame_crops=distinct)
        for a, b in zip(got, ref):
            assert a.shape == b.shape and torch.equal(a, b)


def test_batched_scan_equals_file_by_file(lipfd, v1_result, good_clip, tmp_path):
    from forensics_plugins.lipfd.batched import analyze_many

    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    paths = [V1 / "v1.mp4", empty, good_clip, V1 / "v1.mp4"]
    out = list(analyze_many(lipfd, paths, workers=2, files_per_batch=2))
    assert [p for p, _ in out] == [str(p) for p in paths]
    assert isinstance(out[1][1], MediaProcessingError) and out[1][1].code == "empty_file"
    expected = {0: v1_result, 2: lipfd.analyze(good_clip), 3: v1_result}
    for i, ref in expected.items():
        got, ref = out[i][1].to_dict(), ref.to_dict()
        assert got["status"] == "ok" and got["media_path"] == ref["media_path"]
        assert [w["start_frame"] for w in got["windows"]] == [w["start_frame"] for w in ref["windows"]]
        np.testing.assert_allclose([w["logit"] for w in got["windows"]], [w["logit"] for w in ref["windows"]], atol=1e-4, rtol=0)
        np.testing.assert_allclose(got["metrics"]["window_scores"], ref["metrics"]["window_scores"], atol=2e-5, rtol=0)
        assert got["precision"] == ref["precision"] and got["frames_analyzed"] == ref["frames_analyzed"]
        assert set(got["timings"]) >= {"audio", "frame_decode", "window_build", "global_branch", "region_branch"}

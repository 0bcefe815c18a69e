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


def test_batched_scan_equals_file_by_file(lipfd, v1_result, good_clip, face_clip, tmp_path):
    """Every file's outcome is analyze()'s: scores (a real face framed on the face, the reference clip at
    full frame), abstentions (a drawn face: no_face; a silent video: no_audio_track) and errors."""
    from forensics_plugins.lipfd.batched import analyze_many

    from media_corpus import make_clip

    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    silent = make_clip(tmp_path / "silent.mp4", seconds=3.0, audio=False)
    framed = face_clip("small_offcentre")
    paths = [V1 / "v1.mp4", empty, good_clip, framed, silent, V1 / "v1.mp4"]
    out = list(analyze_many(lipfd, paths, workers=2, files_per_batch=2))
    assert [p for p, _ in out] == [str(p) for p in paths]
    assert isinstance(out[1][1], MediaProcessingError) and out[1][1].code == "empty_file"
    expected = {0: v1_result, 2: lipfd.analyze(good_clip), 3: lipfd.analyze(framed), 4: lipfd.analyze(silent), 5: v1_result}
    assert [expected[i].abstain_code or expected[i].status for i in (2, 3, 4)] == ["no_face", "ok", "no_audio_track"]
    for i, ref in expected.items():
        got, ref = out[i][1].to_dict(), ref.to_dict()
        assert got["media_path"] == ref["media_path"] and got["media_path_bytes"] == ref["media_path_bytes"]
        assert (got["status"], got["abstain_code"], got["weights"]) == (ref["status"], ref["abstain_code"], ref["weights"])
        assert got["options"] == ref["options"] and got["windows_with_face"] == ref["windows_with_face"]
        if ref["status"] == "abstained":
            assert got["score"] is None and got["abstain_reason"] == ref["abstain_reason"]
            continue
        assert [(w["start_frame"], w["track"], w["face_box"], w.get("crop")) for w in got["windows"]] == \
            [(w["start_frame"], w["track"], w["face_box"], w.get("crop")) for w in ref["windows"]]
        np.testing.assert_allclose([w["logit"] for w in got["windows"]], [w["logit"] for w in ref["windows"]], atol=1e-4, rtol=0)
        np.testing.assert_allclose(got["metrics"]["window_scores"], ref["metrics"]["window_scores"], atol=2e-5, rtol=0)
        assert got["faces"] is not None and [t["track"] for t in got["faces"]] == [t["track"] for t in ref["faces"]]
        np.testing.assert_allclose([t["score"] or 0 for t in got["faces"]], [t["score"] or 0 for t in ref["faces"]], atol=2e-5)
        assert got["precision"] == ref["precision"] and got["frames_analyzed"] == ref["frames_analyzed"]
        assert got["warnings"] == ref["warnings"] and len(got["segments"]) == len(ref["segments"])
        np.testing.assert_allclose(np.array(got["segments"]).reshape(-1), np.array(ref["segments"]).reshape(-1), atol=2e-5)
        assert set(got["timings"]) >= {"audio", "faces", "frame_decode", "window_build", "global_branch", "region_branch"}

"""LIPFD-V1 on real faces: framing on the face, several faces, abstention without a face, the output contract.

The stand-in weights give meaningless scores, so these tests check structure and
consistency (which framing ran, which windows and tracks were scored, that the video's
score is the maximum over tracks), never verdicts.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from face_clips import CLIPS, iou
from forensics_core.ensemble import run_ensemble
from forensics_core.results import DetectionResult, result_json_schema


def test_the_output_contract_is_in_the_schema():
    schema = result_json_schema()
    props, defs = schema["properties"], schema["$defs"]
    assert {"faces", "windows_with_face", "abstain_code"} <= set(props)
    assert set(defs["FaceTrack"]["properties"]) == {"track", "score", "prediction", "frames", "boxes", "landmarks", "windows"}
    assert {"track", "face_box"} <= set(defs["Window"]["properties"])


def check_contract(result: DetectionResult, n_windows: int) -> dict:
    d = json.loads(result.model_dump_json())
    assert d["options"]["framing"] in {"auto", "full", "face"} and d["options"]["framing_used"] in {"full", "face"}
    assert "faces" in d["timings"] and d["timings"]["faces"] >= 0
    assert 0 <= d["windows_with_face"] <= n_windows
    for t in d["faces"]:
        assert set(t) == {"track", "score", "prediction", "frames", "boxes", "landmarks", "windows"}
        assert len(t["frames"]) == len(t["boxes"]) == len(t["landmarks"]) and all(len(p) == 5 for p in t["landmarks"])
        assert (t["score"] is None) == (t["prediction"] is None)
    for w in d["windows"]:
        assert "track" in w and "face_box" in w
    return d


@pytest.mark.slow
def test_off_centre_face_is_framed_on_the_face(lipfd, face_clip):
    layer = CLIPS["small_offcentre"][0]
    d = check_contract(lipfd.analyze(face_clip("small_offcentre")), 10)
    assert d["status"] == "ok" and d["options"]["framing_used"] == "face" and d["windows_with_face"] == 10
    (track,) = d["faces"]
    assert track["score"] == pytest.approx(d["score"]) and track["windows"] == list(range(10))
    assert len(d["windows"]) == 10 and {w["track"] for w in d["windows"]} == {0}
    for w in d["windows"]:
        assert iou(w["face_box"], layer.face_box(w["start_frame"])) >= 0.5
        x0, y0, x1, y1 = w["crop"]
        assert x1 - x0 == y1 - y0 < 120  # a square about 1.4x the 61 px face, not the 1280x720 frame
    assert d["metrics"]["window_scores"] == [w["score"] for w in d["windows"]]
    assert d["frames_analyzed"] == 50 and not d["warnings"]


@pytest.mark.slow
def test_two_faces_are_analysed_each_and_the_video_takes_the_maximum(lipfd, face_clip):
    d = check_contract(lipfd.analyze(face_clip("two_faces"), n_extract=4), 4)
    assert d["status"] == "ok" and d["options"]["framing_used"] == "face"
    assert [t["track"] for t in d["faces"]] == [0, 1] and all(t["windows"] == [0, 1, 2, 3] for t in d["faces"])
    scores = {t["track"]: t["score"] for t in d["faces"]}
    assert d["score"] == pytest.approx(max(scores.values()))
    assert all(t["prediction"] == ("FAKE" if t["score"] >= 0.5 else "REAL") for t in d["faces"])
    assert len(d["windows"]) == 8  # every window once per face
    for track, score in scores.items():
        mine = [w["score"] for w in d["windows"] if w["track"] == track]
        assert len(mine) == 4 and np.mean(mine) == pytest.approx(score)
    deciding = max(scores, key=scores.get)
    assert d["metrics"]["window_scores"] == [w["score"] for w in d["windows"] if w["track"] == deciding]
    assert d["metrics"]["final_average_score"] == pytest.approx(d["score"])
    for w in d["windows"]:
        assert iou(w["face_box"], CLIPS["two_faces"][w["track"]].face_box(w["start_frame"])) >= 0.5
    # max_faces: only the face covering most windows (ties: the first) is analysed; the other is still reported
    one = lipfd.analyze(face_clip("two_faces"), n_extract=4, max_faces=1).to_dict()
    assert [t["score"] is None for t in one["faces"]] == [False, True] and {w["track"] for w in one["windows"]} == {0}


@pytest.mark.slow
def test_no_face_abstains_with_a_reason_code_and_full_framing_warns(lipfd, face_clip):
    path = face_clip("test_pattern")
    for framing in ("auto", "face"):
        result = lipfd.analyze(path, framing=framing)
        d = check_contract(result, 10)
        assert d["status"] == "abstained" and d["abstain_code"] == "no_face" and "no face" in d["abstain_reason"]
        assert d["score"] is None and d["prediction"] is None and d["metrics"] is None and d["windows"] == []
        assert d["faces"] == [] and d["windows_with_face"] == 0
        assert set(d["timings"]).isdisjoint({"global_branch", "region_branch", "audio"})  # nothing else was computed
    full = check_contract(lipfd.analyze(path, framing="full", n_extract=3), 3)
    assert full["status"] == "ok" and full["windows_with_face"] == 0
    assert any("no face was seen" in w for w in full["warnings"])
    assert all(w["track"] is None and w["face_box"] is None for w in full["windows"])


@pytest.mark.slow
def test_a_face_that_leaves_scores_only_the_windows_it_is_in(lipfd, face_clip):
    layer = CLIPS["leaves"][0]
    d = check_contract(lipfd.analyze(face_clip("leaves")), 10)
    assert d["status"] == "ok" and d["options"]["framing_used"] == "face"
    scored = [w["index"] for w in d["windows"]]
    assert scored == d["faces"][0]["windows"] and 4 <= len(scored) <= 8 and d["windows_with_face"] == len(scored)
    assert all(layer.visible(w["end_frame"]) for w in d["windows"])
    assert any(f"{10 - len(scored)} of 10 windows had no tracked face" in w for w in d["warnings"])
    assert [p["index"] for p in d["frame_predictions"]] == scored  # window indices, as the windows say


@pytest.mark.slow
def test_the_fidelity_clip_runs_the_reference_framing(v1_result):
    """Default auto on v1.mp4 (a large centred face): the released full-frame path, provably."""
    d = v1_result.to_dict()
    assert d["options"]["framing"] == "auto" and d["options"]["framing_used"] == "full"
    assert d["windows_with_face"] == 10 and len(d["faces"]) == 1 and d["faces"][0]["score"] == pytest.approx(d["score"])
    assert all(w["track"] == 0 and "crop" not in w for w in d["windows"])


@pytest.mark.slow
def test_an_ensemble_finds_one_files_faces_once(lipfd, face_clip):
    from face_models_for_tests import FaceCountingDetector

    report = next(run_ensemble([lipfd, FaceCountingDetector().load()], [face_clip("small_offcentre")]))
    lip, counter = report.results
    assert lip.status == counter.status == "ok"
    assert counter.options["frames_searched_now"] == 0  # LIPFD-V1 searched the same frames a moment before
    assert [t["frames"] for t in counter.options["faces"]] == [t.frames for t in lip.faces]

"""GEND-CLIP-L14 on real faces, alone and beside LIPFD-V1 (stand-in weights: structure, not verdicts)."""
from __future__ import annotations

from pathlib import Path

import pytest

from face_clips import ASTRONAUT_BOX, CLIPS, astronaut, carphone, carphone_box, iou, make_face_clip
from media_corpus import _speech_expr, ffmpeg

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def talking_carphone(tmp_path_factory) -> Path:
    """carphone_pristine.mp4 (a real man talking in a car, 176x144, 29.97 fps) with a speech-like track."""
    out = tmp_path_factory.mktemp("gend_clips") / "carphone_talking.mp4"
    ffmpeg(["-i", str(carphone()), "-f", "lavfi", "-i", f"aevalsrc='{_speech_expr()}':s=16000:d=4", "-map", "0:v",
            "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest", "file:" + str(out)])
    return out


def test_ensemble_on_a_real_talking_face(lipfd, gend, talking_carphone):
    from forensics_core.ensemble import run_ensemble

    report = next(run_ensemble([lipfd, gend], [talking_carphone], options={"GEND-CLIP-L14": {"num_frames": 4}}))
    lip, gen = report.results
    assert (lip.detector_id, lip.status, gen.detector_id, gen.status) == ("LIPFD-V1", "ok", "GEND-CLIP-L14", "ok")
    duration = report.media["duration"]
    assert duration == pytest.approx(4.0, abs=0.1)
    for row in (lip, gen):  # both timelines on one time axis: the file's
        assert row.windows and all(0 <= w.start_time <= w.end_time <= duration + 0.05 for w in row.windows)
    assert len(gen.windows) == 4 and gen.frames_analyzed == 4
    from itertools import islice

    from forensics_plugins.gend.sampling import max_spread_order

    count = gen.media["frame_count"]
    # upstream's order: the middle frame, both ends, then the middle of the widest gap
    frames = [w.start_frame for w in gen.windows]
    assert frames == sorted(islice(max_spread_order(count), 4))
    assert {0, count // 2, count - 1} <= set(frames)
    for w in gen.windows:
        extra = w.model_dump()
        assert iou(extra["face_box"], carphone_box(w.start_frame)) >= 0.5
        assert extra["face_box_source"] == "detector" and extra["track"] == 0
        assert w.start_time == pytest.approx(w.start_frame / report.media["fps"])
    combined = report.combined
    assert combined.status == "ok" and combined.detectors_used == ["LIPFD-V1", "GEND-CLIP-L14"]
    assert combined.score == pytest.approx((lip.score + gen.score) / 2)
    assert combined.evidence in ("substantial", "uncertain", "little")
    assert [v.detector_id for v in combined.votes] == ["LIPFD-V1", "GEND-CLIP-L14"]
    assert all(v.band in ("low", "uncertain", "high") for v in combined.votes)
    assert combined.reasons[0].startswith("LIPFD-V1 scored") and combined.reasons[1].startswith("GEND-CLIP-L14 scored")


def test_on_a_photo_lipfd_abstains_and_gend_scores(lipfd, gend):
    from forensics_core.ensemble import run_ensemble

    report = next(run_ensemble([lipfd, gend], [astronaut()]))
    lip, gen = report.results
    assert lip.status == "abstained" and lip.abstain_code == "still_image" and lip.score is None
    assert gen.status == "ok" and gen.frames_analyzed == 1 and len(gen.windows) == 1
    window = gen.windows[0].model_dump()
    assert (window["start_frame"], window["start_time"], window["end_time"]) == (0, 0.0, 0.0)
    assert iou(window["face_box"], ASTRONAUT_BOX) >= 0.5
    assert report.combined.detectors_used == ["GEND-CLIP-L14"] and report.combined.score == gen.score
    assert "LIPFD-V1 abstained [still_image]" in report.combined.reasons[0]

    from forensics_core.report import render_html

    html = render_html([report.to_dict()], detectors={"LIPFD-V1": lipfd, "GEND-CLIP-L14": gend})
    assert "GEND-CLIP-L14" in html and "LIPFD-V1" in html and "data:image/" in html
    assert report.combined.summary in html and f'evidence {report.combined.evidence}' in html  # the level, in words


def test_gend_abstains_without_a_face(gend, tmp_path):
    clip = make_face_clip(tmp_path / "pattern.mp4", CLIPS["test_pattern"], frames=50)
    result = gend.analyze(clip, num_frames=2)
    assert result.status == "abstained" and result.abstain_code == "no_face" and result.score is None
    assert "8 frames tried" in result.abstain_reason and result.timings["faces"] > 0


def test_gend_takes_the_largest_face(gend, tmp_path):
    """Two people side by side: carphone at 2x (about 94 px wide) beats the astronaut at 0.75x (about 67 px)."""
    layers = CLIPS["two_faces"]
    clip = make_face_clip(tmp_path / "two.mp4", layers, frames=40)
    result = gend.analyze(clip, num_frames=2)
    assert result.status == "ok" and len(result.windows) == 2
    for w in result.windows:
        assert iou(w.model_dump()["face_box"], layers[0].face_box(w.start_frame)) >= 0.5

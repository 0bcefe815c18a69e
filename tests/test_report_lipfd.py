"""LIPFD-V1 in reports: its evidence images are exactly the images the model reads.

The fast tests need no weights: ``evidence()`` on an unloaded detector recomputes the
window images of reference vector v1 from the windows the reference recorded, and they
must equal the released code's PNGs pixel for pixel. The slow test runs the stand-in model
(dense sampling, so windows touch and segments form) and checks that the images captured
during the analysis and those recomputed later from the JSON are the same thumbnails.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from forensics_core import get_detector
from forensics_core.errors import ForensicsError
from forensics_core.report import capture_evidence, render_html
from html_page import Page
from lipfd_fixtures import V1

EXPECTED = json.loads((V1 / "expected.json").read_text())


def reference_result() -> dict:
    """What a LIPFD-V1 result records about v1's windows, taken from the reference measurement."""
    return {"detector_id": "LIPFD-V1", "status": "ok", "media_path": str(V1 / "v1.mp4"),
            "options": {"mel_sample_rate": 22050, "distinct_frame_crops": False},
            "windows": [{"index": i, "start_frame": s, "end_frame": s + 4, "mel_columns": [int(b), int(e)], "score": 0.5}
                        for i, (s, b, e) in enumerate(zip(EXPECTED["window_start_frames"], EXPECTED["mel_col_begin"],
                                                         EXPECTED["mel_col_end"]))]}


def test_evidence_images_equal_the_reference_window_images_without_weights():
    detector = get_detector("LIPFD-V1")
    assert not detector.loaded
    images = detector.evidence(V1 / "v1.mp4", reference_result(), windows=[0, 4, 9])
    assert [i.window_index for i in images] == [0, 4, 9] and {i.kind for i in images} == {"input"}
    for image in images:
        reference = cv2.imread(str(V1 / "windows" / f"v1_{image.window_index}.png"))
        assert image.image.shape == (1000, 2500, 3)
        np.testing.assert_array_equal(image.image, reference)
    assert "frames 64-68 under mel columns 111-119" in images[1].caption


def test_evidence_refuses_windows_the_file_does_not_give():
    result = reference_result()
    result["windows"][2]["start_frame"] += 1  # not where this file's window 2 is
    with pytest.raises(ForensicsError, match="window 2 of the result starts at frame 33") as info:
        get_detector("LIPFD-V1").evidence(V1 / "v1.mp4", result, windows=[2])
    assert info.value.code == "evidence_mismatch"


@pytest.mark.slow
def test_dense_analysis_report_captured_equals_recomputed(lipfd, good_clip):
    options = {"sampling": "dense", "threshold": 0.01,  # every window FAKE: touching windows merge into a segment
               "framing": "full"}  # a drawn face no face detector finds: the whole frame
    with capture_evidence() as capture:
        result = lipfd.analyze(good_clip, **options)
    windows = result["windows"]
    assert len(windows) > 12 and result["segments"] and result["segments"][0][2] == max(w["score"] for w in windows)
    captured = render_html([result], capture=capture, detectors={"LIPFD-V1": lipfd})
    recomputed = render_html([json.loads(json.dumps(result.to_dict()))])  # as from a JSON file: an unloaded detector
    srcs = [[t["src"] for t in Page(html).find("img", class_="thumb")] for html in (captured, recomputed)]
    assert len(srcs[0]) == len(windows) and srcs[0] == srcs[1]
    page = Page(captured)
    assert len(page.find("svg", class_="weights")) == len(windows)  # full / face / lip bars per window
    assert len(page.find("rect", class_="segment")) == len(result["segments"])
    assert len(page.find("rect", class_="window")) == len(windows)
    thumb = page.find("img", class_="thumb")[0]
    assert (int(thumb["width"]), int(thumb["height"])) == (600, 240)  # 2500 x 1000 scaled, aspect kept

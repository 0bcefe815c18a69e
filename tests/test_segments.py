"""Segments: the host's merge rule (forensics_core.segments) and the result field."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from forensics_core.results import DetectionResult, Window
from forensics_core.segments import segments_from_windows


def win(start: int, end: int, score: float, fps: float = 25.0) -> dict:
    return {"start_frame": start, "end_frame": end, "start_time": start / fps, "end_time": (end + 1) / fps, "score": score}


def test_touching_windows_above_the_threshold_merge_scored_by_their_maximum():
    windows = [win(0, 4, 0.9), win(5, 9, 0.7), win(10, 14, 0.2), win(15, 19, 0.6), win(20, 24, 0.8)]
    assert segments_from_windows(windows, 0.5) == [[0.0, 0.4, 0.9], [0.6, 1.0, 0.8]]


def test_a_gap_of_one_frame_separates_segments():
    windows = [win(0, 4, 0.9), win(6, 10, 0.95)]  # frame 5 is in neither window
    assert segments_from_windows(windows, 0.5) == [[0.24, 0.44, 0.95], [0.0, 0.2, 0.9]]


def test_overlapping_windows_merge_and_the_segment_ends_with_the_latest_end():
    windows = [win(0, 9, 0.6), win(2, 4, 0.7), win(8, 12, 0.55)]
    assert segments_from_windows(windows, 0.5) == [[0.0, 13 / 25, 0.7]]


def test_threshold_is_inclusive_and_input_order_does_not_matter():
    windows = [win(10, 14, 0.5), win(0, 4, 0.5), win(5, 9, 0.49999)]
    assert segments_from_windows(windows, 0.5) == [[0.0, 0.2, 0.5], [0.4, 0.6, 0.5]]  # ties: earlier first
    assert segments_from_windows([], 0.5) == []
    assert segments_from_windows([win(0, 4, 0.1)], 0.5) == []


def test_single_frame_windows_as_a_frame_level_detector_gives_them():
    frames = [win(i, i, s) for i, s in enumerate([0.1, 0.8, 0.9, 0.7, 0.2, 0.6])]
    assert segments_from_windows(frames, 0.5) == [[0.04, 0.16, 0.9], [0.2, 0.24, 0.6]]


def test_windows_may_be_result_models():
    windows = [Window(index=i, start_frame=5 * i, end_frame=5 * i + 4, start_time=i / 5, end_time=(i + 1) / 5,
                      score=s, prediction="FAKE" if s >= 0.5 else "REAL") for i, s in enumerate([0.6, 0.7])]
    assert segments_from_windows(windows, 0.5) == [[0.0, 0.4, 0.7]]


def test_result_carries_segments_and_the_schema_shows_them():
    common = {"detector_id": "X", "detector_version": "1", "media_path": "/x.mp4", "processing_time": 0.0}
    assert DetectionResult.abstained("no audio track", **common).segments == []
    result = DetectionResult.scored(score=0.7, window_scores=[0.7], segments=[[0.0, 0.2, 0.7]], **common)
    assert result["segments"] == [[0.0, 0.2, 0.7]]
    with pytest.raises(ValueError):
        DetectionResult.scored(score=0.7, window_scores=[0.7], segments=[["a", 1, 2]], **common)
    out = subprocess.run([sys.executable, "-m", "forensics_core", "schema"], capture_output=True, text=True, check=True)
    prop = json.loads(out.stdout)["properties"]["segments"]
    assert prop["type"] == "array" and prop["items"]["items"]["type"] == "number"
    assert "AV-Deepfake1M" in prop["description"] and "maximum" in prop["description"]

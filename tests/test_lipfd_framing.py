"""LIPFD-V1 framing decided from real faces (no model weights): the training square, auto, several faces."""
from __future__ import annotations

import numpy as np
import pytest

from face_clips import CLIPS, iou
from forensics_core.media.faces import find_faces
from forensics_plugins.lipfd.framing import PAD_VALUE, cut_square, plan, square_iou_with_frame, training_square
from forensics_plugins.lipfd.video import window_starts
from lipfd_fixtures import V1


def windows_of(frame_count: int, n: int = 10, length: int = 5):
    starts = window_starts(frame_count, length, n)
    return starts, sorted({f for s in starts for f in (s, s + length - 1)})


def test_training_square_is_the_vgg_face_track_crop():
    """Side 1.4x the longer box side, centred horizontally, from half a box above the face's centre."""
    assert training_square((100.0, 50.0, 200.0, 170.0)) == (150 - 84, 110 - 60, 168)  # 100 x 120 box, centre (150, 110)
    x0, y0, side = training_square((100.0, 50.0, 200.0, 150.0))  # a square 100 px box
    in_crop = [224 * (v - x0) / side for v in (100.0, 200.0)]  # the box's columns in LipFD's 224 px full crop
    assert in_crop == [32.0, 192.0]  # LipFD's face scale keeps columns 28..196: the face, as trained
    assert 224 * (50.0 - y0) / side == 0.0  # the forehead at the top, chin and neck below


def test_cut_square_pads_with_grey_outside_the_frame():
    frame = np.arange(60 * 80 * 3, dtype=np.uint8).reshape(60, 80, 3)
    inside = cut_square(frame, (10, 5, 40), size=40)
    np.testing.assert_array_equal(inside, frame[5:45, 10:50])  # same size: a pure crop
    outside = cut_square(frame, (-20, -20, 40), size=40)
    assert (outside[:20] == PAD_VALUE).all() and (outside[:, :20] == PAD_VALUE).all()
    np.testing.assert_array_equal(outside[20:, 20:], frame[:20, :20])


def test_auto_keeps_the_reference_framing_for_the_fidelity_clip():
    """v1.mp4: one large centred face in every window, so auto runs the released full-frame path."""
    starts, frames = windows_of(150)
    faces = find_faces(V1 / "v1.mp4", frames)
    decided = plan("auto", faces.tracks, starts, 5, faces.frame_size, max_faces=4)
    assert decided.framing == "full" and decided.windows_with_face == 10 and decided.analysed_tracks == [0]
    assert min(square_iou_with_frame(w[0].square, 640, 480) for w in decided.windows.values()) >= 0.5


@pytest.mark.parametrize("name, framing, tracks", [("small_offcentre", "face", 1), ("two_faces", "face", 2),
                                                   ("test_pattern", "face", 0)])
def test_auto_frames_faces_that_are_not_where_the_training_clips_have_them(face_clip, name, framing, tracks):
    starts, frames = windows_of(120)
    faces = find_faces(face_clip(name), frames)
    decided = plan("auto", faces.tracks, starts, 5, faces.frame_size, max_faces=4)
    assert decided.framing == framing and len(decided.analysed_tracks) == tracks
    assert decided.windows_with_face == (10 if tracks else 0)
    for w, found in decided.windows.items():
        for wf, layer in zip(sorted(found, key=lambda f: f.track), CLIPS[name]):
            assert iou(wf.face_box, layer.face_box(starts[w])) >= 0.5
            x0, y0, side = wf.square
            fx0, fy0, fx1, fy1 = wf.face_box
            assert x0 < fx0 and fx1 < x0 + side and y0 <= fy0 + 0.1 * side and fy1 < y0 + side  # the face inside its square


def test_max_faces_keeps_the_faces_covering_most_windows(face_clip):
    starts, frames = windows_of(120)
    faces = find_faces(face_clip("two_faces"), frames)
    decided = plan("face", faces.tracks, starts, 5, faces.frame_size, max_faces=1)
    assert decided.analysed_tracks == [0] and decided.notes and all(len(v) == 1 for v in decided.windows.values())


def test_face_framing_cuts_each_frame_as_it_is_decoded(face_clip):
    """The window images hold the training square of each face, cut from the decoded frame, then 500x500."""
    from forensics_core.media.frames import read_frames
    from forensics_plugins.lipfd.options import LipFDOptions
    from forensics_plugins.lipfd.pipeline import prepare

    path = face_clip("two_faces")
    prepared = prepare(path, LipFDOptions(framing="auto", n_extract=2))
    assert prepared.framing.framing == "face" and len(prepared.images) == 4  # 2 windows x 2 faces
    assert [(s.index, f.track) for s, f in zip(prepared.spans, prepared.faces)] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for image, span, face in zip(prepared.images, prepared.spans, prepared.faces):
        frames = read_frames(path, range(span.start_frame, span.end_frame + 1))
        for k in range(5):
            np.testing.assert_array_equal(image[500:, 500 * k:500 * (k + 1)], cut_square(frames[span.start_frame + k], face.square))
    full = prepare(path, LipFDOptions(framing="full", n_extract=2))
    assert len(full.images) == 2 and [f.track for f in full.faces] == [0, 0]  # the largest face is named, the frame is whole

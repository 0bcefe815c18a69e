"""LIPFD-V1 preprocessing against the reference vector v1 (no model weights needed)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import soundfile

from forensics_plugins.lipfd import audio
from forensics_plugins.lipfd.options import LipFDOptions
from forensics_plugins.lipfd.pipeline import prepare
from forensics_plugins.lipfd.video import FrameReader, window_starts
from forensics_plugins.lipfd.windows import align, window_tensors
from lipfd_fixtures import V1

PRE = json.loads((V1 / "preprocess.json").read_text())


def reference_window(i: int) -> np.ndarray:
    return cv2.imread(str(V1 / "windows" / f"v1_{i}.png"))  # BGR, as the released loader reads it


def test_window_starts_match_reference():
    assert window_starts(150, 5, 10) == PRE["frame_idx"]


def test_window_starts_do_not_wrap_past_255_frames():
    starts = window_starts(1000, 5, 10)
    assert starts == [int(x) for x in np.linspace(0, 994, 10)]
    assert max(starts) == 994  # the released uint8 cast would give 994 % 256


def test_too_few_frames_rejected():
    with pytest.raises(ValueError):
        window_starts(5, 5, 10)


def test_container_audio_equals_reference_wav():
    pcm = audio.extract_pcm(V1 / "v1.mp4", sample_rate=16000)
    wav, rate = soundfile.read(V1 / "v1.wav", dtype="int16")
    assert rate == 16000
    np.testing.assert_array_equal(pcm, wav)


@pytest.mark.parametrize("source", ["mp4", "wav"])
def test_mel_matches_reference(source):
    if source == "mp4":
        y = audio.resample(audio.pcm_to_float(audio.extract_pcm(V1 / "v1.mp4")), 16000, 22050)
    else:
        y = audio.load_wav(V1 / "v1.wav", sample_rate=22050)
    assert len(y) == PRE["librosa_num_samples"]
    db = audio.mel_db(y, 22050)
    np.testing.assert_allclose(db, np.load(V1 / "mel_db.npy"), atol=1e-3)
    rgba = audio.mel_image(db)
    ref = cv2.cvtColor(cv2.imread(str(V1 / "mel.png"), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
    differing = (rgba != ref).any(-1)
    assert differing.sum() <= 5, f"{differing.sum()} mel pixels differ"  # a dB value on a bin edge may flip one bin
    if differing.any():
        lut = audio.viridis_lut()
        idx = lambda img: np.array([np.flatnonzero((lut == px).all(1))[0] for px in img[differing]])  # noqa: E731
        assert np.abs(idx(rgba) - idx(ref)).max() <= 1


def test_alignment_matches_reference():
    spans = align(PRE["frame_idx"], 150, 259, 5)
    assert [s.mel_begin for s in spans] == [int(x) for x in PRE["mel_col_begin"]]
    assert [s.mel_end for s in spans] == [int(x) for x in PRE["mel_col_end"]]


@pytest.mark.parametrize("audio_source", ["container", "wav"])
def test_window_images_equal_reference_pngs(audio_source):
    opts = LipFDOptions(audio_path=str(V1 / "v1.wav") if audio_source == "wav" else None)
    prepared = prepare(V1 / "v1.mp4", opts)
    assert [s.start_frame for s in prepared.spans] == PRE["frame_idx"]
    assert prepared.frame_count == 150 and prepared.fps == 25.0
    for i, img in enumerate(prepared.images):
        ref = reference_window(i)
        assert img.shape == ref.shape == (1000, 2500, 3)
        np.testing.assert_array_equal(img[500:], ref[500:], err_msg=f"frames of window {i}")
        mel_diff = (img[:500] != ref[:500]).any(-1).sum()
        assert mel_diff <= 500 * 5, f"window {i}: {mel_diff} mel pixels differ"  # one flipped bin spreads over a resized cell


def test_seeking_equals_sequential_decoding():
    starts = PRE["frame_idx"]
    with FrameReader(V1 / "v1.mp4") as reader:
        seq = reader.read_windows(starts, 5, seek="never")
    with FrameReader(V1 / "v1.mp4") as reader:
        sought = reader.read_windows(starts, 5, seek="always")
        assert reader.stats.seeks > 0 and reader.stats.fallback is None
    assert seq.keys() == sought.keys()
    for k in seq:
        np.testing.assert_array_equal(seq[k], sought[k], err_msg=f"frame {k}")


def test_tensors_are_bgr_unnormalised_first_frame_crops(v1_expected):
    images = [reference_window(i) for i in range(2)]
    global_in, crops = window_tensors(images, window_len=5)
    assert global_in.shape == (2, 3, 1120, 1120) and crops.shape == (2, 3, 5, 3, 224, 224)
    stats = v1_expected["img_1120_w0_stats"]
    assert global_in[0].mean().item() == pytest.approx(stats["mean"], abs=1e-3)
    assert global_in[0].std().item() == pytest.approx(stats["std"], abs=1e-3)
    assert global_in[0, 0, 0, :8].tolist() == v1_expected["img_1120_w0_first8_ch0_row0"]
    for scale in range(3):
        for frame in range(5):
            got = crops[0, scale, frame, 0, 0, :4].tolist()
            np.testing.assert_allclose(got, v1_expected["crops_w0_first4_ch0_row0"][scale][frame], atol=1e-4)
            st = v1_expected["crops_w0_stats"][scale][frame]
            assert crops[0, scale, frame].mean().item() == pytest.approx(st["mean"], abs=1e-3)


def test_seed_profile_uses_distinct_frames_and_16k_mel():
    opts = LipFDOptions(profile="seed")
    assert opts.resolved("mel_sample_rate") == 16000 and opts.resolved("distinct_frame_crops") is True
    images = [reference_window(0)]
    _, ref_crops = window_tensors(images, window_len=5)
    _, seed_crops = window_tensors(images, window_len=5, distinct_frame_crops=True)
    assert not np.allclose(ref_crops[0, 0, 4].numpy(), seed_crops[0, 0, 4].numpy())
    np.testing.assert_array_equal(ref_crops[0, 0, 0].numpy(), seed_crops[0, 0, 0].numpy())


@pytest.mark.parametrize("case", ["good", "moov_at_end", "vp9_opus_webm", "mjpeg_pcm_avi", "h264_mkv", "h264_mov",
                                  "yuv420p10le", "yuv444p", "rotated_90", "vfr", "odd_size_17x9"])
def test_auto_seeking_gives_the_sequential_frames(media_corpus, case, monkeypatch):
    """Whatever the container, frames reached by (verified) seeking equal those of a sequential decode."""
    from forensics_plugins.lipfd import video

    monkeypatch.setattr(video, "SEQUENTIAL_GAP", 0)  # seek to every window, even on these short clips
    path = media_corpus[case]
    with FrameReader(path) as reader:
        starts = window_starts(reader.frame_count, 5, 4)
        sequential = reader.read_windows(starts, 5, seek="never")
    with FrameReader(path) as reader:
        sought = reader.read_windows(starts, 5, seek="auto")
        stats = reader.stats
    assert sought.keys() == sequential.keys()
    for k in sequential:
        np.testing.assert_array_equal(sought[k], sequential[k], err_msg=f"{case}: frame {k} (fallback: {stats.fallback})")
    assert stats.seeks > 0 or stats.fallback

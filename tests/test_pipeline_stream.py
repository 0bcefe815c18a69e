"""LIPFD-V1's streaming data path (no model): audio streamed into the mel, frames transformed
as decoded, windows in batches, dense plans, stream offsets, caps checked on decoded data,
and memory bounded whatever the input's length or resolution (issue 14 items 2, 3, 15).

The clips made here show a drawn face that no face detector finds: they run with
``framing="full"`` (the whole-frame path this file tests; with the default ``auto``
LIPFD-V1 would abstain with ``no_face`` before decoding anything)."""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from forensics_core.errors import MediaProcessingError
from forensics_core.media import FFmpegStream, Limits, ffmpeg_input, probe
from forensics_plugins.lipfd import audio
from forensics_plugins.lipfd.options import LipFDOptions
from forensics_plugins.lipfd.pipeline import open_video, prepare
from forensics_plugins.lipfd.video import FrameReader, dense_starts, resize_frame, window_starts
from lipfd_fixtures import V1
from media_corpus import ffmpeg, make_clip

PRE = json.loads((V1 / "preprocess.json").read_text())
PCM_ARGS = ["-v", "error", "-i", ffmpeg_input(V1 / "v1.mp4"), "-vn", "-ac", "1", "-ar", "16000", "-acodec", "pcm_s16le", "-f", "s16le", "pipe:1"]


def lie_about_duration(src: Path, dst: Path, seconds: float) -> Path:
    """Copy an mp4, rewriting the durations in its mvhd, tkhd and mdhd boxes (version 0) to ``seconds``."""
    data = bytearray(src.read_bytes())
    mvhd = data.find(b"mvhd")
    movie_scale = struct.unpack_from(">I", data, mvhd + 16)[0]
    for box, at, scale_at in ((b"mvhd", 20, 16), (b"tkhd", 24, None), (b"mdhd", 20, 16)):
        i = data.find(box)
        while i != -1:
            assert data[i + 4] == 0, "version 1 boxes are not handled"
            scale = movie_scale if scale_at is None else struct.unpack_from(">I", data, i + scale_at)[0]
            struct.pack_into(">I", data, i + at, int(seconds * scale))
            i = data.find(box, i + 4)
    dst.write_bytes(bytes(data))
    return dst


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Small real files made with the bundled ffmpeg (a few seconds in all)."""
    d = tmp_path_factory.mktemp("stream_clips")
    tiny = ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-b:a", "16k"]
    out = {}
    out["five_min_audio"] = d / "five_min.m4a"
    ffmpeg(["-f", "lavfi", "-i", "aevalsrc=(0.5-0.5*cos(2*PI*4*t))*(0.35*sin(2*PI*140*t)+0.05*(random(0)-0.5)):s=16000:d=301.7",
            "-c:a", "aac", "-b:a", "24k", out["five_min_audio"]])
    # audio 4 s after the first frame (an mp4 edit list), and video 3 s after the audio
    out["late_audio"] = d / "late_audio.mp4"
    ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=64x64:r=25:d=8", "-itsoffset", "4", "-f", "lavfi", "-i", "sine=f=300:r=16000:d=4",
            "-map", "0:v", "-map", "1:a", *tiny, out["late_audio"]])
    out["late_video"] = d / "late_video.mp4"
    ffmpeg(["-itsoffset", "3", "-f", "lavfi", "-i", "testsrc2=s=64x64:r=25:d=5", "-f", "lavfi", "-i", "sine=f=300:r=16000:d=8",
            "-map", "0:v", "-map", "1:a", *tiny, out["late_video"]])
    # 10 minutes of frames and sound whose headers say 2 s; and 2 s of frames with 10 minutes of sound, same lie
    ten = d / "ten_min.mp4"
    ffmpeg(["-f", "lavfi", "-i", "color=c=gray:s=64x64:r=25:d=600", "-f", "lavfi", "-i", "sine=f=300:r=16000:d=600", *tiny, ten])
    out["header_lie"] = lie_about_duration(ten, d / "header_lie.mp4", 2.0)
    long_audio = d / "long_audio.mp4"
    ffmpeg(["-f", "lavfi", "-i", "color=c=gray:s=64x64:r=25:d=2", "-f", "lavfi", "-i", "sine=f=300:r=16000:d=600", *tiny, long_audio])
    out["audio_lie"] = lie_about_duration(long_audio, d / "audio_lie.mp4", 2.0)
    out["stereo_wav"] = make_clip(d / "stereo48k.wav", seconds=3, vcodec=None, audio_rate=48000, channels=2)
    out["touching"] = make_clip(d / "touching.mp4", seconds=1.2, size=(160, 120))
    return out


# ------------------------------------------------------------------------- ffmpeg, streamed


def test_ffmpeg_stream_gives_what_run_ffmpeg_gives_and_stops_when_closed():
    whole = audio.extract_pcm(V1 / "v1.mp4").tobytes()
    with FFmpegStream(PCM_ARGS, path=V1 / "v1.mp4", timeout=60, read_size=4096) as stream:
        chunks = list(stream)
    assert b"".join(chunks) == whole and len(chunks) > 1
    endless = ["-v", "error", "-f", "lavfi", "-i", "anoisesrc=d=36000", "-f", "s16le", "pipe:1"]
    with FFmpegStream(endless, path=None, timeout=60) as stream:
        next(iter(stream))
    assert stream._proc.returncode is not None  # killed and reaped, not left running


def test_ffmpeg_stream_timeout_counts_time_waiting_for_ffmpeg():
    slow = ["-v", "error", "-re", "-f", "lavfi", "-i", "anoisesrc=d=60:r=8000", "-f", "s16le", "pipe:1"]  # real time
    with pytest.raises(MediaProcessingError) as info:
        with FFmpegStream(slow, path="noise", timeout=0.5) as stream:
            for _ in stream:
                pass
    assert info.value.code == "decode_timeout" and stream._proc.returncode is not None
    with pytest.raises(MediaProcessingError) as info:
        with FFmpegStream(["-v", "error", "-i", "file:/nonexistent.mp4", "-f", "s16le", "pipe:1"], path="x", timeout=30) as stream:
            list(stream)
    assert info.value.code == "decode_failed" and "No such file" in info.value.message


# ------------------------------------------------------------------------- audio -> mel


def test_streamed_mel_is_the_one_shot_mel_on_the_reference_vector():
    y = audio.resample(audio.pcm_to_float(audio.extract_pcm(V1 / "v1.mp4")), 16000, 22050)
    db = audio.mel_db(y, 22050)
    mel, n = audio.stream_mel(V1 / "v1.mp4")
    assert n == len(y) == PRE["librosa_num_samples"] and mel.columns == db.shape[1] == 259
    np.testing.assert_array_equal(mel.db(), db)
    rgba = audio.mel_image(db)
    np.testing.assert_array_equal(mel.rgba(), rgba)
    for b, e in zip(PRE["mel_col_begin"], PRE["mel_col_end"]):  # a window's slice, coloured on the clip's scale
        np.testing.assert_array_equal(mel.rgba(int(b), int(e)), rgba[:, int(b):int(e)])


def test_streamed_mel_equals_the_one_shot_mel_on_a_five_minute_track(clips):
    """Past two blocks (2 min) the mel is computed block by block; stated tolerance: |ddB| <= 1e-3,
    colour indices off by at most 1 on at most 0.01 % of pixels (bit-identical on the development machine)."""
    path = clips["five_min_audio"]
    y = audio.resample(audio.pcm_to_float(audio.extract_pcm(path)), 16000, 22050)
    db = audio.mel_db(y, 22050)
    mel, n = audio.stream_mel(path)
    assert n == len(y) and mel.columns == db.shape[1] and len(mel.blocks) >= 4
    assert np.abs(mel.db() - db).max() <= 1e-3
    def code(img: np.ndarray) -> np.ndarray:
        img = img.astype(np.int64)
        return img[..., 0] * 65536 + img[..., 1] * 256 + img[..., 2]

    index = {int(c): i for i, c in enumerate(code(audio.viridis_lut()))}
    got, ref = code(mel.rgba()), code(audio.mel_image(db))
    differ = got != ref
    assert differ.mean() <= 1e-4
    if differ.any():
        assert max(abs(index[int(a)] - index[int(b)]) for a, b in zip(got[differ], ref[differ])) <= 1


@pytest.mark.parametrize("n", [1, 2047, 2048, 22050 * 7 + 3, 512 * 2560 * 2 - 1000])
def test_mel_builder_up_to_two_blocks_is_the_one_shot_call_whatever_the_chunks(n):
    import librosa

    rng = np.random.default_rng(n)
    y = (rng.standard_normal(n) * 0.1).astype(np.float32)
    builder, i = audio.MelBuilder(22050), 0
    while i < n:
        step = int(rng.integers(1, 40000))
        builder.feed(y[i:i + step])
        i += step
    mel = builder.finish()
    np.testing.assert_array_equal(np.concatenate(mel.blocks, axis=1), librosa.feature.melspectrogram(y=y, sr=22050))


def test_resampler_stream_is_librosa_soxr_hq_bit_for_bit():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(16000 * 20 + 7) * 0.1).astype(np.float32)
    r, out, i = audio.Resampler(16000, 22050), [], 0
    while i < x.size:
        step = int(rng.integers(100, 50000))
        out.append(r(x[i:i + step]))
        i += step
    out.append(r(np.zeros(0, dtype=np.float32), last=True))
    y = np.concatenate(out)
    ref = audio.resample(x, 16000, 22050)
    assert r.length == ref.size
    np.testing.assert_array_equal(y[:ref.size], ref)


def test_separate_audio_files_are_streamed_as_librosa_load_reads_them(clips):
    for path in (V1 / "v1.wav", clips["stereo_wav"]):
        y = audio.load_wav(path, sample_rate=22050)
        mel, n = audio.wav_mel(path, mel_rate=22050)
        assert n == y.size
        np.testing.assert_array_equal(mel.rgba(), audio.mel_image(audio.mel_db(y, 22050)))


def test_separate_audio_file_with_a_name_that_is_not_utf8(tmp_path):
    """libsndfile is handed /proc/self/fd/N, never the user's name: a Latin-1 name reads the same samples."""
    odd = os.path.join(os.fsencode(tmp_path), b"voix-\xe9t\xe9.wav")
    with open(V1 / "v1.wav", "rb") as src, open(odd, "wb") as dst:
        shutil.copyfileobj(src, dst)
    mel, n = audio.wav_mel(odd, mel_rate=22050)
    ref, n_ref = audio.wav_mel(V1 / "v1.wav", mel_rate=22050)
    assert n == n_ref > 0
    np.testing.assert_array_equal(mel.rgba(), ref.rgba())


def test_audio_decoding_stops_at_the_cap_whatever_the_header(clips):
    """2 s of frames, 10 minutes of sound, every header saying 2 s: the cap stops the decoding near 60 s."""
    path = clips["audio_lie"]
    assert probe(path).duration == pytest.approx(2.0)
    with pytest.raises(MediaProcessingError) as info:
        prepare(path, LipFDOptions(framing="full"), Limits(max_duration_s=60))
    assert info.value.code == "duration_exceeds_limit" and "FORENSICS_MAX_DURATION_S" in info.value.hint
    decoded = float(info.value.message.split("more than ")[1].split(" s")[0])
    assert 60 < decoded < 75, info.value.message  # stopped within a chunk of the cap, not after 600 s
    with pytest.raises(MediaProcessingError) as info:  # without the cap: 2 s of video against 600 s of audio
        prepare(path, LipFDOptions(framing="full"))
    assert info.value.code == "stream_mismatch"


def test_frames_beyond_the_header_count_against_the_cap(clips):
    """10 minutes whose mvhd/mdhd/tkhd say 2 s: the 15000 frames the stream holds are what is capped."""
    path = clips["header_lie"]
    assert probe(path, limits=Limits(max_duration_s=60)).duration == pytest.approx(2.0)  # the header alone passes
    with pytest.raises(MediaProcessingError) as info:
        prepare(path, LipFDOptions(framing="full"), Limits(max_duration_s=60))
    assert info.value.code == "duration_exceeds_limit" and "15000 frames" in info.value.message
    with open_video(path, LipFDOptions(framing="full")) as video:  # within the default cap: analysed, and the lie reported
        assert video.frame_count == 15000
        assert any("header says the media lasts 2.0 s" in w and "15000 frames" in w for w in video.warnings)
        assert any("audio track decodes to 600.0 s" in w for w in video.warnings)


# ------------------------------------------------------------------------- streams that start apart


def test_late_audio_is_put_on_the_video_timeline_with_a_warning(clips):
    prepared = prepare(clips["late_audio"], LipFDOptions(n_extract=8, framing="full"))
    lead = prepared.media["audio_lead_s"]
    assert 3.9 < lead < 4.0  # 4 s, less the AAC encoder's priming (played too)
    warning = next(w for w in prepared.warnings if "after the first video frame" in w)
    assert f"{lead:.2f} s of silence were put before it" in warning
    assert prepared.audio_seconds == pytest.approx(8.0, abs=0.2)  # silence + 4 s of sound, as long as the video
    first, last = prepared.images[0][:500], prepared.images[-1][:500]
    assert (first == first[0, 0]).all()  # the window at 0 s hears silence: one colour
    assert len(np.unique(last.reshape(-1, 3), axis=0)) > 10  # the window at 7 s hears the tone


def test_early_audio_is_cut_to_the_first_frame_with_a_warning(clips):
    prepared = prepare(clips["late_video"], LipFDOptions(n_extract=4, framing="full"))
    assert prepared.media["audio_lead_s"] == pytest.approx(-3.0, abs=0.01)
    assert any("3.00 s before the first video frame" in w and "dropped" in w for w in prepared.warnings)
    assert prepared.audio_seconds == pytest.approx(5.0, abs=0.1)


def test_aligned_streams_are_left_alone():
    prepared = prepare(V1 / "v1.mp4", LipFDOptions())
    assert prepared.media["audio_lead_s"] == 0.0 and not prepared.warnings


# ------------------------------------------------------------------------- frames


def test_the_transform_hook_sees_every_full_frame_once_and_its_result_is_kept():
    seen = []

    def crops(index: int, frame: np.ndarray):
        seen.append((index, frame.shape))
        return {"track0": frame[:8, :8].copy()}  # anything: a face tracker returns crops per track

    with FrameReader(V1 / "v1.mp4") as reader:
        out = reader.read_windows([0, 40], 5, transform=crops)
    assert [i for i, _ in seen] == [0, 1, 2, 3, 4, 40, 41, 42, 43, 44]
    w, h = probe(V1 / "v1.mp4").display_size
    assert {shape for _, shape in seen} == {(h, w, 3)}  # full resolution, before any resize
    assert all(isinstance(v, dict) and v["track0"].shape == (8, 8, 3) for v in out.values())


def test_the_default_transform_is_the_released_resize_and_seeking_keeps_full_frames_identical():
    def ident(index, frame):
        return frame

    with FrameReader(V1 / "v1.mp4") as reader:
        full = reader.read_windows(PRE["frame_idx"], 5, seek="never", transform=ident)
    with FrameReader(V1 / "v1.mp4") as reader:
        sought = reader.read_windows(PRE["frame_idx"], 5, seek="always", transform=ident)
    with FrameReader(V1 / "v1.mp4") as reader:
        resized = reader.read_windows(PRE["frame_idx"], 5)
    assert full.keys() == sought.keys() == resized.keys()
    for k in full:
        np.testing.assert_array_equal(full[k], sought[k])
        np.testing.assert_array_equal(resized[k], resize_frame(full[k]))
        assert resized[k].shape == (500, 500, 3)


def test_decoded_frames_are_checked_against_the_pixel_cap():
    info = probe(V1 / "v1.mp4")
    with FrameReader(V1 / "v1.mp4", info=info, limits=Limits(max_pixels=1000)) as reader:
        with pytest.raises(MediaProcessingError) as err:
            reader.read_windows([0], 5)
    assert err.value.code == "resolution_exceeds_limit" and "decoded frame" in err.value.message


# ------------------------------------------------------------------------- plans and batches


def test_dense_starts_cover_the_video():
    assert dense_starts(150, 5, 5) == list(range(0, 146, 5))
    assert dense_starts(150, 5, 16) == window_starts(150, 5, 10) == PRE["frame_idx"]  # v1: same as spread
    assert dense_starts(12, 5, 3) == [0, 3, 6]
    with pytest.raises(ValueError):
        dense_starts(4, 5, 5)


def test_batches_stream_the_same_images_as_one_batch_with_and_without_a_thread():
    with open_video(V1 / "v1.mp4", LipFDOptions()) as video:
        whole = [img for b in video.batches(size=10) for img in b.images]
    opts = LipFDOptions(sampling="dense", stride=16, window_batch=3)
    for prefetch in (0, 1):
        with open_video(V1 / "v1.mp4", opts) as video:
            batches = list(video.batches(prefetch=prefetch))
        assert [len(b.spans) for b in batches] == [3, 3, 3, 1]
        assert [s.start_frame for b in batches for s in b.spans] == PRE["frame_idx"]
        for a, b in zip(whole, [img for batch in batches for img in batch.images]):
            np.testing.assert_array_equal(a, b)


def test_dense_windows_touch_and_frames_are_decoded_once(clips):
    with open_video(clips["touching"], LipFDOptions(sampling="dense", framing="full")) as video:
        assert video.frame_count == 30 and [s.start_frame for s in video.spans] == [0, 5, 10, 15, 20, 25]
        spans = [s for b in video.batches(prefetch=1) for s in b.spans]
        assert video.reader.stats.frames_decoded == 30 and video.reader.stats.seeks == 0
    assert all(b.start_frame == a.end_frame + 1 for a, b in zip(spans, spans[1:]))


def test_closing_midway_stops_the_decoding_thread(clips):
    import threading

    before = {t.name for t in threading.enumerate()}
    with open_video(clips["touching"], LipFDOptions(sampling="dense", window_batch=1, framing="full")) as video:
        batches = video.batches(prefetch=1)
        next(batches)
    assert not any(t.name == "lipfd-frames" for t in threading.enumerate()) and "lipfd-frames" not in before


# ------------------------------------------------------------------------- memory (subprocess peaks)

_PEAK = textwrap.dedent("""
    import json, resource, sys
    from forensics_plugins.lipfd.options import LipFDOptions
    from forensics_plugins.lipfd.pipeline import prepare
    p = prepare(sys.argv[1], LipFDOptions(framing="full"))
    print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "windows": len(p.images), "warnings": p.warnings}))
""")


def preprocessing_peak(path: Path) -> dict:
    """Peak RSS of a fresh process that preprocesses ``path`` (all imports included)."""
    out = subprocess.run([sys.executable, "-c", _PEAK, str(path)], capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_memory_of_a_7000x7000_clip_stays_near_a_small_clips(tmp_path, good_clip):
    """60 frames of 49 MP (inside the 50 MP cap): before, all 50 wanted frames were held at full
    size (7.3 GB); now each is resized as it is decoded: OpenCV's own buffers remain (~0.6 GB)."""
    big = tmp_path / "big.mp4"
    ffmpeg(["-f", "lavfi", "-i", "color=c=0x405060:s=7000x7000:r=25:d=2.4,drawbox=x=2000:y=2000:w=3000:h=3000:color=0xd0a080:t=fill",
            "-f", "lavfi", "-i", "sine=f=220:r=16000:d=2.4", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "40",
            "-c:a", "aac", "-shortest", big], timeout=600)
    base, peak = preprocessing_peak(good_clip), preprocessing_peak(big)
    assert peak["windows"] == 10
    assert peak["peak_mb"] - base["peak_mb"] < 1000, (base, peak)


@pytest.mark.slow
def test_memory_of_a_one_hour_clip_stays_near_a_small_clips(tmp_path, good_clip):
    """One hour of sound: before, 2.1 GB (the whole track and its mel in memory); now the mel
    power only (80 MB) plus fixed buffers."""
    hour = tmp_path / "hour.mp4"
    ffmpeg(["-f", "lavfi", "-i", "color=c=gray:s=64x64:r=5:d=3600", "-f", "lavfi",
            "-i", "aevalsrc=0.3*sin(2*PI*(140+40*sin(2*PI*t/7))*t):s=16000:d=3600",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-b:a", "16k", hour], timeout=1200)
    base, peak = preprocessing_peak(good_clip), preprocessing_peak(hour)
    assert peak["windows"] == 10
    assert peak["peak_mb"] - base["peak_mb"] < 300, (base, peak)

"""Tests for forensics_core.media: validation, probing, limits and safe ffmpeg use.

Everything runs against real files generated with ffmpeg (tests/media_corpus.py); our
own code is never mocked.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from forensics_core.errors import InvalidOptionsError, MediaProcessingError
from forensics_core.media import (
    Limits,
    MediaInfo,
    ffmpeg_exe,
    ffmpeg_input,
    probe,
    run_ffmpeg,
    validate_path,
)
from media_corpus import CASES

VALIDATE_CODES = {"file_not_found", "not_a_file", "empty_file", "unreadable", "file_too_large"}
OK_CASES = [name for name, spec in CASES.items() if spec.error is None]
SRC = Path(__file__).resolve().parents[1] / "src"


def _check_fields(info: MediaInfo, expected: dict) -> None:
    for field, want in expected.items():
        got = getattr(info, field)
        assert got == want, f"{field}: got {got!r}, want {want!r}"


# --------------------------------------------------------------------------- the corpus


@pytest.mark.parametrize("name", list(CASES))
def test_probe_corpus_case(media_corpus: dict[str, Path], name: str) -> None:
    spec = CASES[name]
    path = media_corpus[name]
    if spec.error is not None:
        with pytest.raises(MediaProcessingError) as exc_info:
            probe(path)
        err = exc_info.value
        assert err.code == spec.error, err.message
        assert err.path is not None and Path(err.path).name == path.name
        assert err.hint
        json.dumps(err.to_dict())
        if spec.error in VALIDATE_CODES:  # caught before ffmpeg ever runs
            with pytest.raises(MediaProcessingError) as exc_info:
                validate_path(path)
            assert exc_info.value.code == spec.error
        else:
            assert validate_path(path) == path.resolve()
        return

    info = probe(path)
    assert info.path == path.resolve() and info.path.is_absolute()
    assert info.size_bytes == path.stat().st_size
    assert info.has_video is spec.has_video
    assert info.has_audio is spec.has_audio
    # a still image offers the "image" modality, not "video" (no motion; forensics_core.modalities)
    still = bool(dict(spec.expect).get("still_image"))
    assert info.modalities == ({"image"} if still else {m for m, on in (("video", spec.has_video), ("audio", spec.has_audio)) if on})
    assert info.exact is False and info.video_duration is None and info.audio_duration is None
    if info.has_video:
        assert info.width and info.height and info.video_codec
        assert info.frame_count is None or info.frame_count >= 1
    else:
        assert info.width is info.height is info.fps is info.frame_count is info.video_codec is None
    if info.has_audio:
        assert info.audio_codec and info.audio_sample_rate and info.audio_channels
    else:
        assert info.audio_codec is info.audio_sample_rate is info.audio_channels is None
    _check_fields(info, dict(spec.expect))


@pytest.mark.parametrize("name", [n for n in OK_CASES if CASES[n].expect_exact])
def test_probe_exact_counts_packets(media_corpus: dict[str, Path], name: str) -> None:
    info = probe(media_corpus[name], exact=True)
    assert info.exact is True
    assert (info.video_duration is not None) == (info.has_video and not info.still_image)
    assert (info.audio_duration is not None) == info.has_audio
    _check_fields(info, dict(CASES[name].expect_exact))


def test_exact_reveals_what_headers_hide(media_corpus: dict[str, Path]) -> None:
    """Container headers give the longest stream; only exact=True shows the mismatch."""
    short_video = probe(media_corpus["video_shorter_than_audio"])
    assert short_video.frame_count == 100  # moviepy's duration * fps estimate
    short_video = probe(media_corpus["video_shorter_than_audio"], exact=True)
    assert short_video.frame_count == 25
    assert short_video.audio_duration / short_video.video_duration > 3
    short_audio = probe(media_corpus["audio_shorter_than_video"], exact=True)
    assert short_audio.video_duration / short_audio.audio_duration > 6


def test_still_image_is_one_frame_of_video(media_corpus: dict[str, Path]) -> None:
    for name in ("still_png", "still_jpg"):
        info = probe(media_corpus[name])
        assert info.still_image and info.has_video and not info.has_audio
        assert (info.frame_count, info.duration, info.fps) == (1, None, None)
        assert info.modalities == {"image"}


def test_rotation_and_display_size(media_corpus: dict[str, Path]) -> None:
    info = probe(media_corpus["rotated_90"])
    assert (info.width, info.height, info.rotation) == (320, 240, 90)
    assert info.display_size == (240, 320)
    assert probe(media_corpus["good"]).display_size == (640, 480)


def test_newline_in_name_cannot_inject_stream_info(media_corpus: dict[str, Path]) -> None:
    path = media_corpus["newline_name"]
    assert "9000x9000" in path.name and "\n" in path.name
    info = probe(path, limits=Limits(max_duration_s=60, max_pixels=1_000_000))
    assert (info.width, info.height) == (160, 120)
    assert info.duration == pytest.approx(1.0, abs=0.1)


def test_good_clip_fixture(good_clip: Path) -> None:
    info = probe(good_clip)
    assert (info.width, info.height, info.fps, info.frame_count) == (640, 480, 25.0, 100)
    assert (info.video_codec, info.pix_fmt, info.audio_codec, info.audio_sample_rate, info.audio_channels) == (
        "h264", "yuv420p", "aac", 16000, 1,
    )
    assert info.duration == pytest.approx(4.0, abs=0.1)
    head = good_clip.read_bytes()[:64 * 1024]
    assert head.find(b"moov") < head.find(b"mdat")  # faststart


def test_make_clip_containers(tmp_path: Path) -> None:
    from media_fixtures import make_clip

    mkv = make_clip(tmp_path / "clip.mkv", seconds=1.0, size=(160, 120), fps=30, audio_rate=22050)
    info = probe(mkv)
    assert (info.width, info.height, info.fps, info.audio_sample_rate) == (160, 120, 30.0, 22050)
    silent = make_clip(tmp_path / "silent.mp4", seconds=0.4, size=(64, 48), audio=False)
    assert probe(silent).modalities == {"video"}


# --------------------------------------------------------------------------- validate_path


def test_validate_path_returns_resolved_absolute(good_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    link = tmp_path / "link.mp4"
    link.symlink_to(good_clip)
    assert validate_path(link) == good_clip.resolve()
    monkeypatch.chdir(good_clip.parent)
    assert validate_path(good_clip.name) == good_clip.resolve()
    assert validate_path(os.fsencode(good_clip)) == good_clip.resolve()


@pytest.mark.parametrize(
    "make, code",
    [
        (lambda d, good: d / "nope" / "x.mp4", "file_not_found"),
        (lambda d, good: good / "inside-a-file.mp4", "file_not_found"),
        (lambda d, good: "", "file_not_found"),
        (lambda d, good: str(d / "nul\0.mp4"), "file_not_found"),
        (lambda d, good: d / ("x" * 5000), "file_not_found"),
        (lambda d, good: (d / "dangling.mp4").symlink_to(d / "gone.mp4") or d / "dangling.mp4", "file_not_found"),
        (lambda d, good: ((d / "loop.mp4").symlink_to(d / "loop.mp4"), d / "loop.mp4")[1], "file_not_found"),
        (lambda d, good: Path(os.devnull), "not_a_file"),
        (lambda d, good: d, "not_a_file"),
    ],
    ids=["missing-dir", "under-a-file", "empty-string", "nul-byte", "name-too-long", "dangling-symlink",
         "symlink-loop", "dev-null", "directory"],
)
def test_validate_path_errors(tmp_path: Path, good_clip: Path, make, code: str) -> None:
    path = make(tmp_path, good_clip)
    with pytest.raises(MediaProcessingError) as exc_info:
        validate_path(path)
    assert exc_info.value.code == code


def _validate_code_as(uid: int, path: Path) -> str:
    """validate_path(path) in a forked child running as ``uid``; return the error code."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = "ok"
        try:
            os.close(read_fd)
            os.setgid(uid)
            os.setuid(uid)
            validate_path(path, Limits())
        except MediaProcessingError as exc:
            code = exc.code
        except BaseException as exc:  # noqa: BLE001
            code = f"{type(exc).__name__}: {exc}"
        finally:
            os.write(write_fd, code.encode())
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as fh:
        out = fh.read().decode()
    os.waitpid(pid, 0)
    return out


def test_validate_path_unreadable(tmp_path: Path, good_clip: Path) -> None:
    locked = tmp_path / "locked.mp4"
    shutil.copyfile(good_clip, locked)
    locked.chmod(0)
    try:
        if os.geteuid() == 0:  # root reads anything: check as an unprivileged user instead
            assert _validate_code_as(65534, locked) == "unreadable"
        else:
            with pytest.raises(MediaProcessingError) as exc_info:
                validate_path(locked)
            assert exc_info.value.code == "unreadable"
    finally:
        locked.chmod(0o644)


def test_fifo_is_rejected_without_blocking(media_corpus: dict[str, Path]) -> None:
    start = time.monotonic()
    with pytest.raises(MediaProcessingError) as exc_info:
        probe(media_corpus["fifo"])
    assert exc_info.value.code == "not_a_file"
    assert time.monotonic() - start < 5


# --------------------------------------------------------------------------- limits


def test_limit_file_size(good_clip: Path) -> None:
    size = good_clip.stat().st_size
    assert validate_path(good_clip, Limits(max_file_bytes=size)) == good_clip.resolve()
    for call in (lambda: validate_path(good_clip, Limits(max_file_bytes=size - 1)),
                 lambda: probe(good_clip, limits=Limits(max_file_bytes=1000))):
        with pytest.raises(MediaProcessingError) as exc_info:
            call()
        assert exc_info.value.code == "file_too_large"


def test_limit_duration(good_clip: Path, media_corpus: dict[str, Path]) -> None:
    assert probe(good_clip, limits=Limits(max_duration_s=4.5)).duration == pytest.approx(4.0, abs=0.1)
    with pytest.raises(MediaProcessingError) as exc_info:
        probe(good_clip, limits=Limits(max_duration_s=1.0))
    assert exc_info.value.code == "duration_exceeds_limit"
    # no duration in the header: only the exact pass can enforce the limit
    raw = media_corpus["raw_h264"]
    assert probe(raw, limits=Limits(max_duration_s=1.0)).duration is None
    with pytest.raises(MediaProcessingError) as exc_info:
        probe(raw, limits=Limits(max_duration_s=1.0), exact=True)
    assert exc_info.value.code == "duration_exceeds_limit"


def test_limit_pixels(good_clip: Path, media_corpus: dict[str, Path]) -> None:
    assert probe(good_clip, limits=Limits(max_pixels=640 * 480)).width == 640
    with pytest.raises(MediaProcessingError) as exc_info:
        probe(good_clip, limits=Limits(max_pixels=640 * 480 - 1))
    assert exc_info.value.code == "resolution_exceeds_limit"
    assert probe(media_corpus["large_4000x3000"]).width == 4000  # 12 MP is within the default
    with pytest.raises(MediaProcessingError) as exc_info:
        probe(media_corpus["large_4000x3000"], limits=Limits(max_pixels=8_000_000))
    assert exc_info.value.code == "resolution_exceeds_limit"


def test_limit_decode_timeout(good_clip: Path) -> None:
    with pytest.raises(MediaProcessingError) as exc_info:
        probe(good_clip, limits=Limits(decode_timeout_s=1e-6))
    assert exc_info.value.code == "decode_timeout"


def test_run_ffmpeg_kills_a_process_that_runs_too_long() -> None:
    start = time.monotonic()
    with pytest.raises(MediaProcessingError) as exc_info:
        # an endless synthetic source: would run forever without the timeout
        run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=64x48", "-f", "null", "-"], path=None, timeout=1.0)
    assert exc_info.value.code == "decode_timeout"
    assert time.monotonic() - start < 10


def test_limits_from_env() -> None:
    default = Limits()
    assert Limits.from_env({}) == default
    lim = Limits.from_env({
        "FORENSICS_MAX_FILE_MB": "1.5",
        "FORENSICS_MAX_DURATION_S": "30",
        "FORENSICS_MAX_PIXELS": "1000",
        "FORENSICS_DECODE_TIMEOUT_S": "2.5",
    })
    assert lim == Limits(max_file_bytes=1_572_864, max_duration_s=30.0, max_pixels=1000, decode_timeout_s=2.5)
    off = Limits.from_env({"FORENSICS_MAX_FILE_MB": "0", "FORENSICS_MAX_DURATION_S": "", "FORENSICS_MAX_PIXELS": " 0 ",
                           "FORENSICS_DECODE_TIMEOUT_S": ""})
    assert off == Limits(max_file_bytes=None, max_duration_s=None, max_pixels=None, decode_timeout_s=default.decode_timeout_s)
    for env in ({"FORENSICS_MAX_FILE_MB": "lots"}, {"FORENSICS_MAX_PIXELS": "-1"}, {"FORENSICS_MAX_DURATION_S": "nan"},
                {"FORENSICS_DECODE_TIMEOUT_S": "0"}, {"FORENSICS_DECODE_TIMEOUT_S": "soon"}):
        with pytest.raises(InvalidOptionsError):
            Limits.from_env(env)
    for bad in ({"max_pixels": -1}, {"max_duration_s": math.inf}, {"decode_timeout_s": 0}):
        with pytest.raises(InvalidOptionsError):
            Limits(**bad)


def test_default_limits_come_from_the_environment(good_clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORENSICS_MAX_FILE_MB", "0.01")
    with pytest.raises(MediaProcessingError) as exc_info:
        probe(good_clip)
    assert exc_info.value.code == "file_too_large"
    monkeypatch.setenv("FORENSICS_MAX_FILE_MB", "0")
    monkeypatch.setenv("FORENSICS_MAX_DURATION_S", "2")
    with pytest.raises(MediaProcessingError) as exc_info:
        probe(good_clip)
    assert exc_info.value.code == "duration_exceeds_limit"


# --------------------------------------------------------------------------- side effects and safety


def _listing(root: Path) -> set[str]:
    return {os.fsdecode(p.relative_to(root)) for p in root.rglob("*")}


def test_probe_writes_nothing(media_corpus: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    private_tmp = tmp_path / "tmp"
    cwd = tmp_path / "cwd"
    private_tmp.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("TMPDIR", str(private_tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    monkeypatch.setenv("FFREPORT", "file=ffreport-%p-%t.log:level=32")  # would make ffmpeg write a log into cwd
    monkeypatch.chdir(cwd)
    corpus_dir = media_corpus["good"].parent
    before = _listing(corpus_dir)
    before_stat = {n: (p.stat().st_size, p.stat().st_mtime_ns) for n, p in media_corpus.items() if p.is_file()}
    assert tempfile.gettempdir() == str(private_tmp)
    for name, path in media_corpus.items():
        for exact in (False, True):
            try:
                probe(path, exact=exact)
            except MediaProcessingError:
                pass
    assert _listing(corpus_dir) == before
    assert {n: (p.stat().st_size, p.stat().st_mtime_ns) for n, p in media_corpus.items() if p.is_file()} == before_stat
    assert os.listdir(tempfile.gettempdir()) == []
    assert os.listdir(cwd) == []


def test_no_shell_is_ever_used(media_corpus: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = media_corpus["pwned_name"]
    assert "$(touch pwned)" in path.name
    info = probe(path, exact=True)
    assert info.has_video and info.has_audio
    proc = run_ffmpeg(["-i", ffmpeg_input(path), "-f", "null", "-"], path=path, timeout=60)
    assert proc.returncode == 0
    for where in (tmp_path, path.parent, Path.cwd()):
        assert not (where / "pwned").exists() and not (where / "pwned2").exists()


def test_ffmpeg_input_is_an_absolute_file_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("-y.mp4", "concat:a|b.mp4", "http://x.mp4", "a b;c.mp4"):
        arg = ffmpeg_input(name)
        assert arg == "file:" + str(tmp_path / name)
        assert arg.startswith("file:/")
    assert ffmpeg_input(Path("/abs/x.mp4")) == "file:/abs/x.mp4"
    assert os.path.isabs(ffmpeg_exe()) and ffmpeg_exe() is ffmpeg_exe()


def test_run_ffmpeg_failure_carries_ffmpeg_reason(media_corpus: dict[str, Path]) -> None:
    path = media_corpus["text_as_mp4"]
    with pytest.raises(MediaProcessingError) as exc_info:
        run_ffmpeg(["-i", ffmpeg_input(path), "-f", "null", "-"], path=path, timeout=60)
    assert exc_info.value.code == "decode_failed"
    assert "Invalid data found when processing input" in exc_info.value.message
    proc = run_ffmpeg(["-i", ffmpeg_input(path)], path=path, timeout=60, check=False)
    assert proc.returncode != 0 and proc.stdout == b""


@pytest.mark.parametrize("name", OK_CASES)
def test_media_info_to_dict_is_json(media_corpus: dict[str, Path], name: str) -> None:
    info = probe(media_corpus[name], exact=bool(CASES[name].expect_exact))
    data = info.to_dict()
    text = json.dumps(data, allow_nan=False)
    back = json.loads(text)
    assert back["path"] == os.fspath(info.path)
    assert back["modalities"] == sorted(info.modalities)
    assert set(back) >= {"path", "size_bytes", "format_name", "has_video", "has_audio", "width", "height", "fps",
                         "frame_count", "duration", "rotation", "video_codec", "audio_codec", "audio_sample_rate",
                         "audio_channels"}
    for value in back.values():
        assert not (isinstance(value, float) and not math.isfinite(value))


def test_media_info_is_frozen(good_clip: Path) -> None:
    info = probe(good_clip)
    with pytest.raises(Exception):
        info.width = 1  # type: ignore[misc]


def test_import_is_light() -> None:
    code = (
        "import sys, forensics_core.media\n"
        "heavy = [m for m in ('moviepy', 'numpy', 'imageio_ffmpeg', 'cv2', 'torch') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_stream_parser_reads_ffmpeg4_and_ffmpeg9_layouts():
    """ffmpeg 4 indents streams by four spaces, ffmpeg >= 5 by two (seen on a GPU machine with ffmpeg 4.2.2)."""
    from forensics_core.media.streams import _input_section, _streams

    ffmpeg4 = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'file:/x/v1.mp4':
  Metadata:
    major_brand     : isom
  Duration: 00:00:06.00, start: 0.000000, bitrate: 169 kb/s
    Stream #0:0(und): Video: h264 (High) (avc1 / 0x31637661), yuv420p, 640x480, 95 kb/s, 25 fps, 25 tbr, 12800 tbn, 50 tbc (default)
    Metadata:
      handler_name    : VideoHandler
    Stream #0:1(und): Audio: aac (LC) (mp4a / 0x6134706D), 16000 Hz, mono, fltp, 65 kb/s (default)
    Metadata:
      handler_name    : SoundHandler
At least one output file must be specified
"""
    ffmpeg9 = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'file:/x/v1.mp4':
  Metadata:
    major_brand     : isom
  Duration: 00:00:06.00, start: 0.000000, bitrate: 169 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 640x480, 95 kb/s, 25 fps, 25 tbr, 12800 tbn (default)
    Metadata:
      handler_name    : VideoHandler
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 16000 Hz, mono, fltp, 65 kb/s (default)
    Metadata:
      handler_name    : SoundHandler
"""
    for text in (ffmpeg4, ffmpeg9):
        fmt, section = _input_section(text)
        head, streams = _streams(section)
        assert fmt == "mov,mp4,m4a,3gp,3g2,mj2"
        assert [(s.index, s.kind, s.codec) for s in streams] == [(0, "Video", "h264"), (1, "Audio", "aac")]
        assert any("Duration" in line for line in head)
        assert all("handler_name" not in line for line in head if line.startswith("      "))

"""A corpus of hostile and odd media files, generated with the ffmpeg bundled in imageio-ffmpeg.

Every file is made from ffmpeg's synthetic ``lavfi`` sources (``color`` + ``drawbox``,
``testsrc2``, ``aevalsrc``), so nothing is downloaded and the corpus is reproducible.
ffmpeg is always called with an argument list and ``file:``-prefixed absolute output
paths, so the odd file names in the corpus are created literally. Each file is well
under 1 MB, and the whole corpus builds in a few seconds on 2 cores.

:data:`CASES` maps a case name to a :class:`CaseSpec`: how the file is made and what
``forensics_core.media.probe`` must report for it (the flags and fields, or the
``MediaProcessingError`` code). :func:`make_corpus` builds every case under a folder.
:func:`make_clip` is the general-purpose generator other tests use for real videos.

The default picture is a cartoon face whose mouth opens and closes at 4 Hz, in step
with the loudness envelope of the default audio (a 140 Hz voiced tone with harmonics
and a little noise, amplitude-modulated at 4 Hz, i.e. about four syllables per
second): a plausible, lip-synced input for an audio-visual detector, though no real
face detector will find a face in it.
"""
from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = ["CASES", "CaseSpec", "ffmpeg", "make_clip", "make_corpus"]


def ffmpeg(args: Sequence[str], *, stdout: Any = subprocess.DEVNULL, timeout: float = 120) -> None:
    """Run the bundled ffmpeg with an argument list (quiet, overwrite, no stdin); raise on failure."""
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *map(str, args)]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({proc.returncode}): {cmd!r}\n{proc.stderr.decode(errors='replace')}")


def _out(path: Path) -> str:
    """ffmpeg output argument for any file name ('-x.mp4', 'a:b.mp4', newlines ...)."""
    return "file:" + os.path.abspath(path)


def _speech_expr() -> str:
    # Voiced tone (140 Hz + harmonics) with a bit of noise, amplitude-modulated at 4 Hz.
    env = "(0.5-0.5*cos(2*PI*4*t))"
    return f"{env}*(0.35*sin(2*PI*140*t)+0.2*sin(2*PI*280*t)+0.1*sin(2*PI*420*t)+0.05*(random(0)-0.5))"


def _face_filter(size: tuple[int, int], fps: float, seconds: float) -> str:
    """A cartoon face whose mouth opening follows the 4 Hz envelope of :func:`_speech_expr`."""
    w, h = size
    if min(w, h) < 64:
        return f"testsrc2=size={max(w, 64)}x{max(h, 64)}:rate={fps}:duration={seconds},scale={w}:{h}"

    def box(x: float, y: float, bw: float, bh: float, color: str, enable: str | None = None) -> str:
        x, y, bw, bh = (max(1, round(v)) for v in (x * w, y * h, bw * w, bh * h))
        s = f"drawbox=x={x}:y={y}:w={bw}:h={bh}:color={color}:t=fill"
        return s + (f":enable='gt(0.5-0.5*cos(2*PI*4*t),{enable})'" if enable else "")

    parts = [
        f"color=c=0x405060:s={w}x{h}:r={fps}:d={seconds}",
        box(0.3125, 0.2083, 0.375, 0.625, "0xd0a080"),  # face
        box(0.3906, 0.3958, 0.0625, 0.0417, "black"),  # eyes
        box(0.5469, 0.3958, 0.0625, 0.0417, "black"),
        box(0.4219, 0.6833, 0.1563, 0.0083, "0x601010"),  # closed mouth
    ]
    for open_h, threshold in ((0.025, "0.2"), (0.05, "0.45"), (0.083, "0.75")):
        parts.append(box(0.4219, 0.6875 - open_h / 2, 0.1563, open_h, "0x601010", threshold))
    parts.append("noise=alls=6:allf=t")
    return ",".join(parts)


_VCODEC_ARGS = {
    "libx264": ["-preset", "veryfast", "-crf", "28"],
    "libvpx-vp9": ["-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k"],
    "mjpeg": ["-q:v", "8"],
}


def _default_acodec(path: Path) -> str:
    return {".webm": "libopus", ".avi": "pcm_s16le", ".wav": "pcm_s16le", ".ogg": "libvorbis"}.get(path.suffix.lower(), "aac")


def make_clip(
    path: str | os.PathLike[str],
    *,
    seconds: float = 4.0,
    size: tuple[int, int] = (640, 480),
    fps: float = 25,
    audio: bool = True,
    audio_rate: int = 16000,
    vcodec: str | None = "libx264",
    container_args: Sequence[str] = (),
    audio_seconds: float | None = None,
    acodec: str | None = None,
    channels: int = 1,
    pix_fmt: str | None = "yuv420p",
    frames: int | None = None,
) -> Path:
    """Write a real clip with ffmpeg and return its path.

    Args:
        path: output file; the extension picks the container (and the default audio
            codec: opus for .webm, PCM for .avi/.wav, AAC otherwise).
        seconds: video length; ``frames`` (default ``round(seconds * fps)``) is exact.
        size, fps: picture size and constant frame rate.
        audio: add an audio track; ``audio_seconds`` (default ``seconds``) sets its
            length independently, ``audio_rate``/``channels`` its format, ``acodec``
            its codec.
        vcodec: ffmpeg encoder (``libx264``, ``libvpx-vp9``, ``mjpeg`` ...); ``None``
            writes an audio-only file.
        pix_fmt: output pixel format (``yuv420p``, ``yuv444p``, ``yuv420p10le``), or
            ``None`` for the encoder's default.
        container_args: extra output options, e.g. ``("-movflags", "+faststart")``.
    """
    out = Path(path)
    if vcodec is None and not audio:
        raise ValueError("a clip needs video or audio")
    args: list[str] = []
    n_frames = frames if frames is not None else max(1, round(seconds * fps))
    if vcodec is not None:
        # trim, not -frames:v: with -frames:v ffmpeg ends the whole output when the video
        # is done, which would cut a longer audio track.
        source = _face_filter(size, fps, n_frames / fps + 1.0 / fps) + f",trim=end_frame={n_frames}"
        args += ["-f", "lavfi", "-i", source]
    if audio:
        a_len = seconds if audio_seconds is None else audio_seconds
        args += ["-f", "lavfi", "-i", f"aevalsrc=exprs='{_speech_expr()}':s={audio_rate}:d={a_len}"]
    if vcodec is not None:
        args += ["-map", "0:v", "-c:v", vcodec, *_VCODEC_ARGS.get(vcodec, [])]
        if pix_fmt:
            args += ["-pix_fmt", pix_fmt]
    if audio:
        args += ["-map", f"{1 if vcodec is not None else 0}:a", "-c:a", acodec or _default_acodec(out)]
        args += ["-ar", str(audio_rate), "-ac", str(channels)]
    args += [*container_args, _out(out)]
    ffmpeg(args)
    return out


# --------------------------------------------------------------------------- cases

Builder = Callable[[Path, Path], None]  # (output path, private work dir) -> None


@dataclass(frozen=True)
class CaseSpec:
    """One corpus file and what ``probe`` must say about it.

    Attributes:
        filename: name of the file (or directory) under the corpus root.
        how: how it is made, in words.
        build: ``build(out_path, work_dir)``; ``None`` for a path that must not exist.
        error: the expected ``MediaProcessingError.code``; then the flags are ``None``.
        has_video, has_audio: expected flags when probing succeeds.
        expect: other ``MediaInfo`` fields from ``probe(path)`` (floats as ``pytest.approx``).
        expect_exact: fields from ``probe(path, exact=True)`` (packet counting).
    """

    filename: str
    how: str
    build: Builder | None
    error: str | None = None
    has_video: bool | None = None
    has_audio: bool | None = None
    expect: Mapping[str, Any] = field(default_factory=dict)
    expect_exact: Mapping[str, Any] = field(default_factory=dict)


def _clip(**kwargs: Any) -> Builder:
    return lambda out, work: (make_clip(out, **kwargs), None)[1]


def _write(data: bytes) -> Builder:
    def build(out: Path, work: Path) -> None:
        out.write_bytes(data)

    return build


def _truncate(keep: Callable[[int], int], **kwargs: Any) -> Builder:
    def build(out: Path, work: Path) -> None:
        src = make_clip(work / ("src" + out.suffix), **kwargs)
        data = src.read_bytes()
        out.write_bytes(data[: keep(len(data))])

    return build


def _rotated(out: Path, work: Path) -> None:
    # ffmpeg >= 7 ignores "-metadata:s:v rotate=90"; the display matrix is set with the
    # input option -display_rotation (counter-clockwise degrees) and a stream copy.
    # -90 is what a phone held upright records: the legacy "rotate=90" tag.
    src = make_clip(work / "src.mp4", seconds=2.0, size=(320, 240))
    ffmpeg(["-display_rotation:v:0", "-90", "-i", _out(src), "-map", "0", "-c", "copy", _out(out)])


def _vfr(out: Path, work: Path) -> None:
    # 25 frames at 25 fps, then 25 frames at 10 fps with a 30 ms jitter on every other
    # frame: irregular timestamps that -fps_mode vfr keeps as they are.
    ffmpeg([
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2",
        "-f", "lavfi", "-i", f"aevalsrc=exprs='{_speech_expr()}':s=16000:d=3.5",
        "-vf", r"setpts=if(lt(N\,25)\,N/25\,1+(N-25)/10+0.03*mod(N\,2))/TB",
        "-fps_mode", "vfr", "-c:v", "libx264", *_VCODEC_ARGS["libx264"], "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-ac", "1", _out(out),
    ])


def _one_chapter(out: Path, work: Path) -> None:
    # Exactly one chapter: moviepy 2.x's ffmpeg-output parser raises IndexError on it.
    src = make_clip(work / "src.mkv", seconds=2.0, size=(320, 240))
    meta = work / "chapters.txt"
    meta.write_text(";FFMETADATA1\ntitle=one chapter\n\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1000\ntitle=Intro\n")
    ffmpeg(["-i", _out(src), "-f", "ffmetadata", "-i", _out(meta), "-map", "0", "-map_metadata", "1",
            "-map_chapters", "1", "-c", "copy", _out(out)])


def _raw_h264(out: Path, work: Path) -> None:
    # An Annex-B elementary stream has no container: no duration, no timestamps.
    make_clip(out, seconds=2.0, size=(320, 240), audio=False, container_args=("-f", "h264"))


def _streamed_mkv(out: Path, work: Path) -> None:
    # Matroska written to a pipe (a live recording, a crashed OBS session): the muxer
    # cannot seek back to write the duration, so the header has none.
    with open(out, "wb") as fh:
        args = ["-f", "lavfi", "-i", _face_filter((320, 240), 25, 2.04) + ",trim=end_frame=50",
                "-f", "lavfi", "-i", f"aevalsrc=exprs='{_speech_expr()}':s=16000:d=2",
                "-c:v", "libx264", *_VCODEC_ARGS["libx264"], "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-ac", "1", "-f", "matroska", "pipe:1"]
        ffmpeg(args, stdout=fh)


def _cover_art(out: Path, work: Path) -> None:
    # Music-style file: AAC audio plus a PNG "attached pic". moviepy counts the picture
    # as a video stream; it is not one.
    ffmpeg([
        "-f", "lavfi", "-i", f"aevalsrc=exprs='{_speech_expr()}':s=44100:d=2",
        "-f", "lavfi", "-i", "color=c=red:s=64x64:r=25:d=0.04",
        "-map", "0:a", "-map", "1:v", "-c:a", "aac", "-c:v", "png",
        "-disposition:v:0", "attached_pic", _out(out),
    ])


def _image(out: Path, work: Path) -> None:
    ffmpeg(["-f", "lavfi", "-i", _face_filter((320, 240), 25, 0.2), "-frames:v", "1", "-update", "1", _out(out)])


def _mkdir(out: Path, work: Path) -> None:
    out.mkdir()


def _mkfifo(out: Path, work: Path) -> None:
    os.mkfifo(out)


def _symlink(target: str) -> Builder:
    """A symlink to ``target`` (relative to the link's folder, or absolute)."""
    def build(out: Path, work: Path) -> None:
        os.symlink(target, out)

    return build


_SRT = b"1\n00:00:00,000 --> 00:00:01,000\nhello\n\n2\n00:00:01,500 --> 00:00:02,000\nworld\n"
_TEXT = b"This is not a video. It is a text file with a video file's name.\n" * 40
_RANDOM = random.Random(20240601).randbytes(64 * 1024)
#: A name whose bytes are not UTF-8 (Latin-1 "é" and two stray bytes): Python holds it with
#: surrogate escapes; OpenCV segfaulted on it and UTF-8 JSON could not hold it (issue 14, item 1).
NON_UTF8_NAME = os.fsdecode(b"caf\xe9 \xff\xfe.mp4")
_INJECTED_NAME = (
    "inj\n  Duration: 09:00:00.00, start: 0.000000\n"
    "  Stream #0:0: Video: h264, yuv420p, 9000x9000, 25 fps, 25 tbr.mp4"
)

approx = pytest.approx
_SMALL = dict(seconds=1.0, size=(160, 120))  # cheap clip for name-handling cases
_SMALL_EXPECT = {"width": 160, "height": 120, "frame_count": 25, "duration": approx(1.0, abs=0.1)}
_GOOD_EXPECT = {
    "width": 640, "height": 480, "fps": approx(25.0), "frame_count": 100, "duration": approx(4.0, abs=0.1),
    "rotation": 0, "video_codec": "h264", "audio_codec": "aac", "audio_sample_rate": 16000,
    "audio_channels": 1, "pix_fmt": "yuv420p", "still_image": False,
}

CASES: dict[str, CaseSpec] = {
    # ---- not media at all: validate_path
    "missing": CaseSpec("missing.mp4", "never created", None, error="file_not_found"),
    "directory": CaseSpec("directory.mp4", "a directory named like a video", _mkdir, error="not_a_file"),
    "fifo": CaseSpec("fifo.mp4", "a named pipe (opening it would block forever)", _mkfifo, error="not_a_file"),
    "empty": CaseSpec("empty.mp4", "zero bytes", _write(b""), error="empty_file"),
    # ---- files no demuxer recognises
    "text_as_mp4": CaseSpec("text.mp4", "plain text renamed .mp4", _write(_TEXT), error="unsupported_format"),
    "random_bytes": CaseSpec("random.mp4", "64 KiB of seeded random bytes", _write(_RANDOM), error="unsupported_format"),
    "subtitles_only": CaseSpec(
        "subtitles.mp4", "an SRT subtitle file renamed .mp4 (recognised, but no audio/video)", _write(_SRT),
        error="unsupported_format",
    ),
    # ---- recognised but damaged containers
    "truncated_mp4": CaseSpec(
        "truncated.mp4", "mp4 without faststart (moov at the end), first half kept: moov atom missing",
        _truncate(lambda n: n // 2, seconds=2.0, size=(320, 240)), error="decode_failed",
    ),
    "truncated_webm": CaseSpec(
        "truncated.webm", "webm cut to its first 300 bytes, inside the EBML/segment header",
        _truncate(lambda n: 300, seconds=1.0, size=(160, 120), vcodec="libvpx-vp9"), error="decode_failed",
    ),
    # ---- valid files
    "good": CaseSpec(
        "good.mp4", "640x480 25 fps 4 s H.264 yuv420p + AAC 16 kHz mono speech-like audio, faststart",
        _clip(container_args=("-movflags", "+faststart")), has_video=True, has_audio=True, expect=_GOOD_EXPECT,
        expect_exact={"frame_count": 100, "video_duration": approx(4.0, abs=0.05), "audio_duration": approx(4.0, abs=0.1)},
    ),
    "moov_at_end": CaseSpec(
        "moov_at_end.mp4", "same as good but without faststart (ffmpeg's default: moov after mdat)",
        _clip(), has_video=True, has_audio=True, expect=_GOOD_EXPECT,
    ),
    "video_only": CaseSpec(
        "video_only.mp4", "H.264 without an audio track", _clip(seconds=2.0, size=(320, 240), audio=False),
        has_video=True, has_audio=False,
        expect={"frame_count": 50, "audio_codec": None, "audio_sample_rate": None, "audio_channels": None},
    ),
    "audio_only_wav": CaseSpec(
        "audio_only.wav", "PCM s16le 16 kHz mono WAV", _clip(vcodec=None, seconds=2.0),
        has_video=False, has_audio=True,
        expect={"audio_codec": "pcm_s16le", "audio_sample_rate": 16000, "audio_channels": 1, "width": None,
                "fps": None, "frame_count": None, "duration": approx(2.0, abs=0.05)},
    ),
    "audio_only_m4a": CaseSpec(
        "audio_only.m4a", "AAC in .m4a", _clip(vcodec=None, seconds=2.0), has_video=False, has_audio=True,
        expect={"audio_codec": "aac", "audio_sample_rate": 16000, "frame_count": None},
    ),
    "audio_only_mp4": CaseSpec(
        "audio_only_aac.mp4", "AAC in a file named .mp4 (no video)", _clip(vcodec=None, seconds=2.0),
        has_video=False, has_audio=True, expect={"audio_codec": "aac"},
    ),
    "audio_with_cover_art": CaseSpec(
        "cover_art.m4a", "AAC + PNG attached picture (music-style cover art)", _cover_art,
        has_video=False, has_audio=True, expect={"audio_sample_rate": 44100, "width": None},
    ),
    "still_png": CaseSpec(
        "still.png", "one PNG image", _image, has_video=True, has_audio=False,
        expect={"still_image": True, "frame_count": 1, "fps": None, "duration": None, "width": 320, "height": 240,
                "video_codec": "png", "format_name": "png_pipe"},
    ),
    "still_jpg": CaseSpec(
        "still.jpg", "one JPEG image", _image, has_video=True, has_audio=False,
        expect={"still_image": True, "frame_count": 1, "video_codec": "mjpeg"},
    ),
    "one_frame": CaseSpec(
        "one_frame.mp4", "a single video frame with 0.04 s of audio", _clip(frames=1, seconds=0.04, size=(320, 240)),
        has_video=True, has_audio=True, expect={"frame_count": approx(1, abs=1)}, expect_exact={"frame_count": 1},
    ),
    "five_frames": CaseSpec(
        "five_frames.mp4", "five video frames with 0.2 s of audio", _clip(frames=5, seconds=0.2, size=(320, 240)),
        has_video=True, has_audio=True, expect={"frame_count": approx(5, abs=1)}, expect_exact={"frame_count": 5},
    ),
    "video_shorter_than_audio": CaseSpec(
        "video_shorter_than_audio.mp4", "1 s of video, 4 s of audio", _clip(seconds=1.0, audio_seconds=4.0, size=(320, 240)),
        has_video=True, has_audio=True,
        # moviepy's estimate uses the container duration (the audio's): 100, not 25.
        expect={"duration": approx(4.0, abs=0.1), "frame_count": 100},
        expect_exact={"frame_count": 25, "video_duration": approx(1.0, abs=0.05), "audio_duration": approx(4.0, abs=0.1)},
    ),
    "audio_shorter_than_video": CaseSpec(
        "audio_shorter_than_video.mp4", "4 s of video, 0.5 s of audio", _clip(seconds=4.0, audio_seconds=0.5, size=(320, 240)),
        has_video=True, has_audio=True, expect={"duration": approx(4.0, abs=0.1), "frame_count": 100},
        expect_exact={"frame_count": 100, "video_duration": approx(4.0, abs=0.05), "audio_duration": approx(0.5, abs=0.1)},
    ),
    "vp9_opus_webm": CaseSpec(
        "vp9_opus.webm", "VP9 + Opus in WebM", _clip(seconds=2.0, size=(320, 240), vcodec="libvpx-vp9"),
        has_video=True, has_audio=True,
        expect={"video_codec": "vp9", "audio_codec": "opus", "audio_sample_rate": 48000, "format_name": "matroska,webm"},
    ),
    "mjpeg_pcm_avi": CaseSpec(
        "mjpeg_pcm.avi", "MJPEG + PCM in AVI", _clip(seconds=2.0, size=(320, 240), vcodec="mjpeg", pix_fmt="yuvj420p"),
        has_video=True, has_audio=True,
        expect={"video_codec": "mjpeg", "audio_codec": "pcm_s16le", "format_name": "avi", "frame_count": 50},
    ),
    "h264_mkv": CaseSpec(
        "h264.mkv", "H.264 + AAC in Matroska", _clip(seconds=2.0, size=(320, 240)), has_video=True, has_audio=True,
        expect={"format_name": "matroska,webm", "video_codec": "h264", "frame_count": approx(50, abs=1)},
    ),
    "h264_mov": CaseSpec(
        "h264.mov", "H.264 + AAC in QuickTime", _clip(seconds=2.0, size=(320, 240)), has_video=True, has_audio=True,
        expect={"video_codec": "h264", "frame_count": 50},
    ),
    "yuv420p10le": CaseSpec(
        "10bit.mp4", "10-bit H.264 (High 10, yuv420p10le)", _clip(seconds=1.0, size=(320, 240), pix_fmt="yuv420p10le"),
        has_video=True, has_audio=True, expect={"pix_fmt": "yuv420p10le"},
    ),
    "yuv444p": CaseSpec(
        "yuv444.mp4", "4:4:4 H.264 (High 4:4:4 Predictive)", _clip(seconds=1.0, size=(320, 240), pix_fmt="yuv444p"),
        has_video=True, has_audio=True, expect={"pix_fmt": "yuv444p"},
    ),
    "rotated_90": CaseSpec(
        "rotated.mp4", "320x240 with a display matrix of -90 degrees (portrait phone video)", _rotated,
        has_video=True, has_audio=True, expect={"width": 320, "height": 240, "rotation": 90},
    ),
    "vfr": CaseSpec(
        "vfr.mp4", "variable frame rate: 1 s at 25 fps then 10 fps with jitter (setpts + -fps_mode vfr)", _vfr,
        has_video=True, has_audio=True,
        # ffmpeg reports the average rate; moviepy's duration*fps estimate is off by one or two.
        expect={"fps": approx(15, abs=2), "frame_count": approx(50, abs=3)}, expect_exact={"frame_count": 50},
    ),
    "audio_8k_mono": CaseSpec(
        "audio_8k_mono.mp4", "video + AAC 8 kHz mono", _clip(seconds=1.0, size=(320, 240), audio_rate=8000),
        has_video=True, has_audio=True, expect={"audio_sample_rate": 8000, "audio_channels": 1},
    ),
    "audio_48k_stereo": CaseSpec(
        "audio_48k_stereo.mp4", "video + AAC 48 kHz stereo", _clip(seconds=1.0, size=(320, 240), audio_rate=48000, channels=2),
        has_video=True, has_audio=True, expect={"audio_sample_rate": 48000, "audio_channels": 2},
    ),
    "audio_5_1": CaseSpec(
        "audio_5_1.mp4", "video + AAC 48 kHz 5.1", _clip(seconds=1.0, size=(320, 240), audio_rate=48000, channels=6),
        has_video=True, has_audio=True, expect={"audio_channels": 6},
    ),
    "odd_size_17x9": CaseSpec(
        "odd_17x9.mp4", "17x9 pixels (odd sizes need 4:4:4 in H.264)", _clip(seconds=1.0, size=(17, 9), pix_fmt="yuv444p"),
        has_video=True, has_audio=True, expect={"width": 17, "height": 9},
    ),
    "large_4000x3000": CaseSpec(
        "large_4000x3000.mp4", "two 4000x3000 frames (12 MP)", _clip(frames=2, seconds=0.08, size=(4000, 3000)),
        has_video=True, has_audio=True, expect={"width": 4000, "height": 3000, "frame_count": 2},
    ),
    "raw_h264": CaseSpec(
        "raw.h264", "Annex-B H.264 elementary stream: no container, no duration", _raw_h264,
        has_video=True, has_audio=False,
        expect={"format_name": "h264", "duration": None, "frame_count": None, "fps": approx(25.0)},
        expect_exact={"frame_count": 50, "video_duration": approx(2.0, abs=0.05)},
    ),
    "streamed_mkv": CaseSpec(
        "streamed.mkv", "Matroska written to a pipe: no duration in the header", _streamed_mkv,
        has_video=True, has_audio=True, expect={"duration": None, "frame_count": None},
        expect_exact={"frame_count": 50, "video_duration": approx(2.0, abs=0.05)},
    ),
    "one_chapter": CaseSpec(
        "one_chapter.mkv", "H.264 + AAC in Matroska with exactly one chapter", _one_chapter,
        has_video=True, has_audio=True, expect={"width": 320, "frame_count": approx(50, abs=1)},
    ),
    # ---- hostile file names (all valid small clips)
    "unicode_name": CaseSpec("vidéo_测试_🎬.mp4", "unicode name", _clip(**_SMALL), has_video=True, has_audio=True, expect=_SMALL_EXPECT),
    "shell_meta_name": CaseSpec(
        "a;b $(x) 'q' \"d\".mp4", "shell metacharacters and quotes", _clip(**_SMALL),
        has_video=True, has_audio=True, expect=_SMALL_EXPECT,
    ),
    "pwned_name": CaseSpec(
        "$(touch pwned) `touch pwned2`.mp4", "command substitution in the name", _clip(**_SMALL),
        has_video=True, has_audio=True, expect=_SMALL_EXPECT,
    ),
    "dash_name": CaseSpec("-y.mp4", "starts with '-' (an ffmpeg option if passed bare)", _clip(**_SMALL),
                          has_video=True, has_audio=True, expect=_SMALL_EXPECT),
    "protocol_name": CaseSpec(
        "concat:x.mp4|pipe:0.mp4", "looks like ffmpeg protocols (concat:, pipe:)", _clip(**_SMALL),
        has_video=True, has_audio=True, expect=_SMALL_EXPECT,
    ),
    "newline_name": CaseSpec(
        _INJECTED_NAME, "newlines that try to inject a fake 9 h, 9000x9000 stream into ffmpeg's output",
        _clip(**_SMALL), has_video=True, has_audio=True, expect=_SMALL_EXPECT,
    ),
    # ---- issue 14: names and links that crashed or stopped a run
    "non_utf8_name": CaseSpec(
        NON_UTF8_NAME, "a valid clip whose name holds bytes that are not UTF-8 (b'caf\\xe9 \\xff\\xfe.mp4')",
        _clip(**_SMALL), has_video=True, has_audio=True, expect=_SMALL_EXPECT,
    ),
    "symlink_loop": CaseSpec("loop.mp4", "a symlink to itself (ELOOP)", _symlink("loop.mp4"), error="file_not_found"),
    "dangling_symlink": CaseSpec("dangling.mp4", "a symlink to a file that does not exist", _symlink("gone/nowhere.mp4"),
                                 error="file_not_found"),
    "device_link": CaseSpec("zeros.mp4", "a symlink to /dev/zero (endless; must never be read)", _symlink("/dev/zero"),
                            error="not_a_file"),
}


def make_corpus(root: str | os.PathLike[str], names: Sequence[str] | None = None) -> dict[str, Path]:
    """Build the corpus under ``root`` (created if needed) and return ``{case name: path}``.

    ``names`` limits it to some cases. Intermediate files go to ``root/_work``. Builds
    run in a small thread pool (each is one or two ffmpeg processes).
    """
    base = Path(root)
    files = base / "files"
    work_root = base / "_work"
    files.mkdir(parents=True, exist_ok=True)
    selected = list(CASES) if names is None else list(names)
    paths = {name: files / CASES[name].filename for name in selected}

    def build(name: str) -> None:
        spec = CASES[name]
        if spec.build is None:
            return
        work = work_root / name
        work.mkdir(parents=True, exist_ok=True)
        spec.build(paths[name], work)

    workers = max(2, min(4, (os.cpu_count() or 2) + 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(build, selected))
    return paths


if __name__ == "__main__":  # python tests/media_corpus.py OUTDIR: build it and list sizes
    import sys
    import time

    t0 = time.monotonic()
    built = make_corpus(sys.argv[1] if len(sys.argv) > 1 else "media_corpus")
    for case, p in built.items():
        size = p.stat().st_size if p.is_file() else "-"
        print(f"{case:28s} {size!s:>9}  {p.name!r}")
    print(f"built {len(built)} cases in {time.monotonic() - t0:.1f} s")

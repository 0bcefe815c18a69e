"""Audio: the speech track as PCM, and the mel image LipFD reads.

The published checkpoint saw, per video, a WAV loaded by ``librosa.load`` at its
default 22050 Hz (soxr_hq), a mel spectrogram with librosa's defaults, dB against
the clip's minimum, and matplotlib's viridis over the clip's [min, max]. We
decode the container's track in memory with the ffmpeg moviepy uses (equal to
``ffmpeg -i IN -vn -ac 1 -ar 16000 -acodec pcm_s16le``), so no WAV is written.
"""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np

from forensics_core.errors import MediaProcessingError, reading_media
from forensics_core.media import ffmpeg_input, run_ffmpeg

_LUT_FILE = Path(__file__).with_name("viridis_lut_u8.json")


def extract_pcm(path: os.PathLike | str, *, sample_rate: int = 16000, timeout: float = 120.0) -> np.ndarray:
    """The container's audio as mono 16-bit PCM at ``sample_rate``, decoded in memory."""
    proc = run_ffmpeg(
        ["-v", "error", "-i", ffmpeg_input(path), "-vn", "-ac", "1", "-ar", str(sample_rate),
         "-acodec", "pcm_s16le", "-f", "s16le", "pipe:1"],
        path=path, timeout=timeout,
    )
    pcm = np.frombuffer(proc.stdout, dtype="<i2")
    if pcm.size == 0:
        raise MediaProcessingError("no_audio_track", f"{path}: no audio track (the audio stream decoded to no samples)", path=path)
    return pcm


def pcm_to_float(pcm: np.ndarray) -> np.ndarray:
    """int16 -> float32 in [-1, 1), as soundfile (and so librosa.load) reads a 16-bit WAV."""
    return pcm.astype(np.float32) / np.float32(32768.0)


def load_wav(path: os.PathLike | str, *, sample_rate: int) -> np.ndarray:
    """A separate audio file exactly as the released code reads it: ``librosa.load(path, sr=rate)``."""
    import librosa

    with reading_media(path):
        y, _ = librosa.load(os.fspath(path), sr=sample_rate, mono=True)
    if y.size == 0:
        raise MediaProcessingError("no_audio_track", f"{path}: no audio track (the file holds no samples)", path=path)
    return y


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """librosa's default resampler (soxr_hq), as ``librosa.load`` applies it."""
    if orig_sr == target_sr:
        return y
    import librosa

    return librosa.resample(y, orig_sr=orig_sr, target_sr=target_sr, res_type="soxr_hq")


def mel_db(y: np.ndarray, sample_rate: int) -> np.ndarray:
    """librosa mel defaults (n_fft 2048, hop 512, centred, 128 bands, power 2), dB re the minimum."""
    import librosa

    power = librosa.feature.melspectrogram(y=y, sr=sample_rate)
    return librosa.power_to_db(power, ref=np.min)


@functools.lru_cache(maxsize=1)
def viridis_lut() -> np.ndarray:
    """The 256-entry uint8 RGBA viridis table matplotlib's ``imsave`` uses."""
    return np.asarray(json.loads(_LUT_FILE.read_text()), dtype=np.uint8)


def mel_image(db: np.ndarray) -> np.ndarray:
    """RGBA uint8 image of ``db`` (row 0 = lowest band), bit-exact with ``plt.imsave(png, db)``.

    Rule: ``idx = trunc(float32((x - min) / (max - min)) * 256)``, 256 -> 255.
    """
    db = db.astype(np.float32, copy=False)
    lo, hi = db.min(), db.max()
    span = hi - lo  # float32 arithmetic throughout, as matplotlib's Normalize does for float32 data
    if span <= 0:  # a constant clip (digital silence): matplotlib maps everything to the lowest colour
        idx = np.zeros(db.shape, dtype=np.int64)
    else:
        scaled = (db - lo) / span
        idx = np.minimum(np.trunc(scaled * np.float32(256)).astype(np.int64), 255)
    return viridis_lut()[idx]

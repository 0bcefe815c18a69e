"""Audio: the speech track as PCM, and the mel image LipFD reads.

The published checkpoint saw, per video, a WAV loaded by ``librosa.load`` at its
default 22050 Hz (soxr_hq), a mel spectrogram with librosa's defaults, dB against
the clip's minimum, and matplotlib's viridis over the clip's [min, max]. We
decode the container's track with the ffmpeg moviepy uses (equal to
``ffmpeg -i IN -vn -ac 1 -ar 16000 -acodec pcm_s16le``), so no WAV is written.

Streaming (:func:`stream_mel`): the track is read from ffmpeg a chunk at a time,
resampled by soxr's streaming resampler (bit-identical to the one-shot
``librosa.resample``, whatever the chunking) and turned into mel columns block by
block (:class:`MelBuilder`); only the float32 mel power is kept (128 x T: 80 MB per
hour). The dB reference (the clip's minimum power) and viridis' [min, max] are
global, so they are computed from the kept power once the track has ended
(:class:`MelPower`), and a window's image is coloured from its own columns. Clips up
to ``2 * BLOCK_COLUMNS`` mel columns (about 2 minutes) take exactly the one-shot path.
"""
from __future__ import annotations

import functools
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from forensics_core.errors import MediaProcessingError, reading_media
from forensics_core.media import FFmpegStream, ffmpeg_input, open_for_decoder, run_ffmpeg

_LUT_FILE = Path(__file__).with_name("viridis_lut_u8.json")

#: librosa's mel defaults, which the released preprocessing uses
N_FFT, HOP = 2048, 512
#: ``power_to_db`` defaults
AMIN, TOP_DB = 1e-10, 80.0
#: mel columns per block on long clips (59.4 s at 22050 Hz; a multiple of librosa's 32-column STFT block)
BLOCK_COLUMNS = 2560
#: samples handed to the resampler at a time (8 s at 16 kHz)
FEED_SAMPLES = 1 << 17


def extract_pcm(path: os.PathLike | str, *, sample_rate: int = 16000, timeout: float = 120.0) -> np.ndarray:
    """The container's audio as mono 16-bit PCM at ``sample_rate``, decoded in memory (whole)."""
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


def mel_image(db: np.ndarray, lo=None, hi=None) -> np.ndarray:
    """RGBA uint8 image of ``db`` (row 0 = lowest band), bit-exact with ``plt.imsave(png, db)``.

    Rule: ``idx = trunc(float32((x - min) / (max - min)) * 256)``, 256 -> 255. ``lo``/``hi``
    default to ``db``'s own min and max; pass the whole clip's to colour a slice of it.
    """
    db = db.astype(np.float32, copy=False)
    lo = db.min() if lo is None else np.float32(lo)
    hi = db.max() if hi is None else np.float32(hi)
    span = hi - lo  # float32 arithmetic throughout, as matplotlib's Normalize does for float32 data
    if span <= 0:  # a constant clip (digital silence): matplotlib maps everything to the lowest colour
        idx = np.zeros(db.shape, dtype=np.int64)
    else:
        scaled = (db - lo) / span
        idx = np.minimum(np.trunc(scaled * np.float32(256)).astype(np.int64), 255)
    return viridis_lut()[idx]


# ------------------------------------------------------------------------------ streaming


class MelPower:
    """The clip's mel power (128 x T float32) as column blocks, and the clip-wide dB scale.

    ``db(b, e)`` and ``rgba(b, e)`` give columns ``b:e`` exactly as ``mel_db`` and
    ``mel_image`` give them from the whole matrix: ``power_to_db``'s steps are
    elementwise once its two clip-wide scalars (the minimum power, the maximum
    log-power that ``top_db`` clips against) are known, and min/max are exact.
    """

    def __init__(self, blocks: list[np.ndarray]):
        import librosa

        self.blocks = blocks
        self.build_seconds = 0.0  # time spent computing it (the ``mel`` stage)
        self.offsets = np.cumsum([0] + [b.shape[1] for b in blocks])
        self.columns = int(self.offsets[-1])
        self.ref = min(b.min() for b in blocks)  # np.min of the whole matrix: the dB reference
        log_max = log_min = None
        for b in blocks:  # power_to_db's log_spec, block by block: its clip-wide max and min
            log = librosa.power_to_db(b, ref=self.ref, amin=AMIN, top_db=None)
            log_max = log.max() if log_max is None else max(log_max, log.max())
            log_min = log.min() if log_min is None else min(log_min, log.min())
        self.floor = log_max - TOP_DB  # librosa: np.maximum(log_spec, log_spec.max() - top_db)
        self.lo, self.hi = max(log_min, self.floor), max(log_max, self.floor)

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self.blocks)

    def power(self, begin: int, end: int) -> np.ndarray:
        if not 0 <= begin <= end <= self.columns:
            raise IndexError(f"mel columns {begin}:{end} outside 0:{self.columns}")
        first = int(np.searchsorted(self.offsets, begin, side="right")) - 1
        parts, col = [], begin
        for k in range(max(first, 0), len(self.blocks)):
            if col >= end:
                break
            lo = col - int(self.offsets[k])
            take = min(end, int(self.offsets[k + 1])) - col
            parts.append(self.blocks[k][:, lo:lo + take])
            col += take
        if not parts:
            return self.blocks[0][:, :0]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def db(self, begin: int = 0, end: int | None = None) -> np.ndarray:
        import librosa

        log = librosa.power_to_db(self.power(begin, self.columns if end is None else end), ref=self.ref, amin=AMIN, top_db=None)
        return np.maximum(log, self.floor)

    def rgba(self, begin: int = 0, end: int | None = None) -> np.ndarray:
        return mel_image(self.db(begin, end), self.lo, self.hi)


class MelBuilder:
    """Samples in (float32, at the mel rate), mel power out, a block of columns at a time.

    Column ``c`` of librosa's centred STFT reads samples ``c*512 - 1024 .. c*512 + 1023``
    of the signal zero-padded by 1024 at both ends (``pad_mode="constant"``). A block of
    ``BLOCK_COLUMNS`` columns is computed with ``center=False`` on its slice of the padded
    signal once the samples of ``BLOCK_COLUMNS`` further columns have arrived, so every
    mel product (a BLAS sgemm, whose rounding can change for a handful of columns) runs
    on at least ``BLOCK_COLUMNS`` columns; the rest is one call at ``finish``. A clip
    that never fills two blocks is one call to ``librosa.feature.melspectrogram`` on
    the whole signal: the one-shot path itself.
    """

    def __init__(self, sample_rate: int):
        self.sr = sample_rate
        self.received = 0  # real samples fed
        self.blocks: list[np.ndarray] = []
        self._buf = np.zeros(N_FFT // 2, dtype=np.float32)  # the padded signal from padded index _start
        self._start = 0
        self._pending: list[np.ndarray] = []
        self._pending_n = 0
        self._next = 0  # first column not yet computed

    def _consolidate(self) -> None:
        if self._pending:
            self._buf = np.concatenate([self._buf, *self._pending])
            self._pending, self._pending_n = [], 0

    def _block(self, first: int, count: int) -> np.ndarray:
        import librosa

        a = first * HOP - self._start
        seg = self._buf[a:a + (count - 1) * HOP + N_FFT]
        return librosa.feature.melspectrogram(y=seg, sr=self.sr, center=False)

    def feed(self, y: np.ndarray) -> None:
        if y.size == 0:
            return
        self._pending.append(np.asarray(y, dtype=np.float32))
        self._pending_n += y.size
        self.received += y.size
        end = self._start + self._buf.size + self._pending_n  # padded samples available
        while (self._next + 2 * BLOCK_COLUMNS - 1) * HOP + N_FFT <= end:
            self._consolidate()
            self.blocks.append(self._block(self._next, BLOCK_COLUMNS))
            self._next += BLOCK_COLUMNS
            drop = self._next * HOP - self._start
            self._buf, self._start = self._buf[drop:].copy(), self._start + drop

    def finish(self, length: int | None = None) -> MelPower:
        """End of the signal. ``length`` fixes its sample count (zero-padded or cut, as
        ``librosa.util.fix_length`` after ``librosa.resample``)."""
        import librosa

        self._consolidate()
        n = self.received if length is None else length
        if n <= 0:
            raise ValueError("no samples")
        real_end = N_FFT // 2 + n - self._start  # index in _buf just after the last real sample
        if self._next and real_end < (self._next - 1) * HOP + N_FFT - self._start:
            raise RuntimeError("the signal was cut inside columns already computed")  # cannot happen: 2 blocks are held back
        buf = self._buf[:real_end] if real_end <= self._buf.size else np.concatenate(
            [self._buf, np.zeros(real_end - self._buf.size, dtype=np.float32)])
        total = 1 + n // HOP
        if not self.blocks:  # short clip: the one-shot call itself
            self.blocks.append(librosa.feature.melspectrogram(y=buf[N_FFT // 2:], sr=self.sr))
        else:
            self._buf = np.concatenate([buf, np.zeros(N_FFT // 2, dtype=np.float32)])
            self.blocks.append(self._block(self._next, total - self._next))
        self._buf = np.zeros(0, dtype=np.float32)
        power = MelPower(self.blocks)
        assert power.columns == total, (power.columns, total)
        return power


class Resampler:
    """soxr_hq streaming, bit-identical to ``librosa.resample(res_type="soxr_hq")`` (length fixed at the end)."""

    def __init__(self, orig_sr: int, target_sr: int):
        self.orig_sr, self.target_sr = orig_sr, target_sr
        self.received = 0
        self._stream = None
        if orig_sr != target_sr:
            import soxr

            self._stream = soxr.ResampleStream(orig_sr, target_sr, 1, dtype="float32", quality="soxr_hq")

    def __call__(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        self.received += x.size
        if self._stream is None:
            return x
        return self._stream.resample_chunk(np.ascontiguousarray(x, dtype=np.float32), last=last)

    @property
    def length(self) -> int:
        """librosa's output length: ``ceil(n * target / orig)``."""
        if self._stream is None:
            return self.received
        return int(np.ceil(self.received * (float(self.target_sr) / self.orig_sr)))


def _pcm_chunks(path, args: list[str], timeout: float) -> Iterator[np.ndarray]:
    """int16 samples from ``ffmpeg ... -f s16le pipe:1`` (``args`` between input and output)."""
    carry = b""
    with FFmpegStream(["-v", "error", "-i", ffmpeg_input(path), *args, "-f", "s16le", "pipe:1"],
                      path=path, timeout=timeout, read_size=1 << 17) as stream:
        for data in stream:
            if carry:
                data, carry = carry + data, b""
            if len(data) % 2:
                data, carry = data[:-1], data[-1:]
            if data:
                yield np.frombuffer(data, dtype="<i2")


def _too_long(path, seconds: float, cap: float, header: float | None) -> MediaProcessingError:
    said = f" (the header says {header:.1f} s)" if header else ""
    return MediaProcessingError(
        "duration_exceeds_limit",
        f"{path}: the audio decodes to more than {seconds:.1f} s{said}, over the limit of {cap:g} s",
        path=path,
    )


def _mel_from(chunks: Iterable[np.ndarray], rate: int, mel_rate: int, *, path, max_duration_s: float | None,
              header_s: float | None, on_seconds: Callable[[float], None] | None) -> tuple[MelPower, int]:
    """float32 mono chunks at ``rate`` -> (mel power at ``mel_rate``, samples at ``mel_rate``)."""
    resampler, builder = Resampler(rate, mel_rate), MelBuilder(mel_rate)
    limit = math.inf if max_duration_s is None else max_duration_s * rate
    spent = 0.0  # seconds in the mel builder (the rest is decoding and resampling)
    for x in chunks:
        if resampler.received + x.size > limit:
            raise _too_long(path, (resampler.received + x.size) / rate, max_duration_s, header_s)
        y = resampler(x)
        t0 = time.perf_counter()
        builder.feed(y)
        spent += time.perf_counter() - t0
        if on_seconds is not None:
            on_seconds(x.size / rate)
    builder.feed(resampler(np.zeros(0, dtype=np.float32), last=True))
    if resampler.received == 0:
        raise MediaProcessingError("no_audio_track", f"{path}: no audio track (the audio stream decoded to no samples)", path=path)
    n = resampler.length
    t0 = time.perf_counter()
    mel = builder.finish(n)
    mel.build_seconds = spent + time.perf_counter() - t0
    return mel, n


def _regroup(chunks: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """Chunks of about ``size`` samples (ffmpeg's pipe gives 64 KiB at a time)."""
    parts, n = [], 0
    for c in chunks:
        parts.append(c)
        n += c.size
        if n >= size:
            yield np.concatenate(parts) if len(parts) > 1 else parts[0]
            parts, n = [], 0
    if parts:
        yield np.concatenate(parts)


def _shifted(chunks: Iterable[np.ndarray], shift: int) -> Iterator[np.ndarray]:
    """``shift`` > 0: that many zero samples first; < 0: that many samples dropped."""
    for start in range(0, max(shift, 0), FEED_SAMPLES):  # silence in pieces: the lead may be hours
        yield np.zeros(min(FEED_SAMPLES, shift - start), dtype=np.float32)
    drop = max(0, -shift)
    for c in chunks:
        if drop:
            k = min(drop, c.size)
            c, drop = c[k:], drop - k
        if c.size:
            yield c


def stream_mel(path, *, sample_rate: int = 16000, mel_rate: int = 22050, timeout: float = 120.0,
               max_duration_s: float | None = None, header_s: float | None = None, shift_s: float = 0.0,
               on_seconds: Callable[[float], None] | None = None) -> tuple[MelPower, int]:
    """The container's track -> (mel power, sample count at ``mel_rate``), in bounded memory.

    Equal to ``mel_db(resample(pcm_to_float(extract_pcm(path)), ...))`` (bit for bit on
    clips up to two blocks; on longer ones every column too, as the tests check).
    ``shift_s`` places the track on the video's timeline: positive, that much silence
    first; negative, that much of the track dropped. Decoding stops with
    ``duration_exceeds_limit`` as soon as the track passes ``max_duration_s``, whatever
    the header said (``header_s``, for the message).
    """
    args = ["-vn", "-ac", "1", "-ar", str(sample_rate), "-acodec", "pcm_s16le"]
    pcm = (pcm_to_float(c) for c in _pcm_chunks(path, args, timeout))
    chunks = _regroup(_shifted(pcm, round(shift_s * sample_rate)), FEED_SAMPLES)
    return _mel_from(chunks, sample_rate, mel_rate, path=path, max_duration_s=max_duration_s, header_s=header_s,
                     on_seconds=on_seconds)


def _soundfile_chunks(path) -> tuple[Iterator[np.ndarray], int] | None:
    """libsndfile's float32 blocks averaged to mono (``librosa.load``'s own path), or None."""
    import soundfile

    source = open_for_decoder(path)  # libsndfile gets /proc/self/fd/N: any file name is safe
    try:
        sf = soundfile.SoundFile(source.path)
    except (soundfile.LibsndfileError, RuntimeError):
        source.close()
        return None

    def chunks() -> Iterator[np.ndarray]:
        with source, sf:
            while True:
                block = sf.read(FEED_SAMPLES, dtype="float32", always_2d=True)
                if block.shape[0] == 0:
                    return
                yield block[:, 0].copy() if block.shape[1] == 1 else np.mean(block.T, axis=0)  # librosa.to_mono's layout

    return chunks(), int(sf.samplerate)


def wav_mel(path, *, mel_rate: int, timeout: float = 120.0, max_duration_s: float | None = None, info=None,
            on_seconds: Callable[[float], None] | None = None) -> tuple[MelPower, int]:
    """A separate audio file as ``librosa.load(path, sr=mel_rate)`` reads it, streamed.

    libsndfile formats (WAV, FLAC, Ogg ...) are read a block at a time exactly as
    ``librosa.load`` reads them whole (float32, channels averaged, soxr_hq). Anything
    else goes through ffmpeg at its native rate and channel count, as librosa's
    audioread fallback decodes it. ``info`` is a probe of ``path`` (for that fallback).
    """
    with reading_media(path):
        opened = _soundfile_chunks(path)
        if opened is not None:
            chunks, rate = opened
        else:
            from forensics_core.media import probe

            info = info or probe(path)
            if not info.has_audio or not info.audio_sample_rate:
                raise MediaProcessingError("no_audio_track", f"{path}: no audio track", path=path)
            rate, channels = info.audio_sample_rate, info.audio_channels or 1
            raw = _pcm_chunks(path, ["-vn", "-acodec", "pcm_s16le"], timeout)
            chunks = _mono(raw, channels)
        return _mel_from(_regroup(chunks, FEED_SAMPLES), rate, mel_rate, path=path, max_duration_s=max_duration_s,
                         header_s=None, on_seconds=on_seconds)


def _mono(chunks: Iterable[np.ndarray], channels: int) -> Iterator[np.ndarray]:
    """Interleaved int16 -> float32 mono: ``np.mean`` over channels, as ``librosa.to_mono``."""
    carry = np.zeros(0, dtype="<i2")
    for c in chunks:
        c = np.concatenate([carry, c]) if carry.size else c
        whole = c.size - c.size % channels
        carry = c[whole:]
        x = pcm_to_float(c[:whole]).reshape(-1, channels).T
        yield x[0].copy() if channels == 1 else np.mean(x, axis=0)  # librosa.to_mono on the same layout

"""The error taxonomy shared by the host and every detector.

Every error the host raises on purpose is a :class:`ForensicsError`. Each one
carries a stable ``code`` (for scripts and JSON rows), a ``hint`` that says how
to fix the problem, and the CLI exit code it maps to. Media errors carry one of
the documented codes in :data:`MEDIA_ERROR_CODES` (see ``docs/errors.md``).
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

#: CLI exit codes (documented in docs/cli.md).
EXIT_OK = 0
EXIT_OTHER = 1
EXIT_USAGE = 2
EXIT_MEDIA = 3
EXIT_MODEL = 4
EXIT_BUSY = 5


class ForensicsError(Exception):
    """Base class: every error the host raises on purpose."""

    code: str = "error"
    exit_code: int = EXIT_OTHER

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message

    def to_dict(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "code": self.code, "message": self.message, "hint": self.hint}


class PluginLoadError(ForensicsError):
    """A plugin could not be imported, registered, or registered a duplicate id."""

    code = "plugin_load_failed"

    def __init__(self, plugin: str, message: str, *, hint: str | None = None):
        super().__init__(f"plugin {plugin!r}: {message}", hint=hint)
        self.plugin = plugin


class UnknownDetectorError(ForensicsError, KeyError):
    """No registered detector has this id or alias."""

    code = "unknown_detector"
    exit_code = EXIT_MODEL

    def __init__(self, detector_id: str, known: list[str]):
        super().__init__(
            f"unknown detector {detector_id!r}; known detectors: {', '.join(known) or '(none)'}",
            hint="run `forensics models` to list detectors, or `forensics plugins` to see plugins that failed to load",
        )
        self.detector_id = detector_id
        self.known = known

    __str__ = ForensicsError.__str__  # KeyError would repr() the message


class InvalidOptionsError(ForensicsError, ValueError):
    """Options that a detector does not accept, or values of the wrong type."""

    code = "invalid_options"
    exit_code = EXIT_USAGE


class WeightsError(ForensicsError):
    """Weights missing, corrupt, unsafe, or not matching the model."""

    code = "weights_error"
    exit_code = EXIT_MODEL


class OutputLockedError(ForensicsError):
    """Another process is writing the same scan output (one output file, one writer)."""

    code = "output_locked"
    exit_code = EXIT_BUSY


class DetectorNotLoadedError(ForensicsError):
    """``analyze`` was called before ``load``."""

    code = "not_loaded"
    exit_code = EXIT_MODEL


class FaceModelError(ForensicsError):
    """The face model could not be loaded: its package is missing or its files are damaged.

    The message names the package to install (docs/faces.md).
    """

    code = "face_model_unavailable"
    exit_code = EXIT_MODEL


#: Stable media error codes: code -> (meaning, default hint). docs/errors.md mirrors this
#: table and a test keeps the two in step.
MEDIA_ERROR_CODES: dict[str, tuple[str, str]] = {
    "file_not_found": ("The path does not exist.", "Check the path and its spelling."),
    "not_a_file": ("The path is a directory or a special file.", "Pass a media file; use `forensics scan DIR` for folders."),
    "empty_file": ("The file has zero bytes.", "The download or copy probably failed; fetch the file again."),
    "unreadable": ("The file exists but cannot be opened for reading.", "Check the file's permissions."),
    "unsupported_format": ("No demuxer recognises the file as audio or video.", "Convert it to a common container (mp4, mkv, mov, webm, avi) with ffmpeg."),
    "no_video_stream": ("The file has no video stream.", "This detector needs video; pass a video file."),
    "no_audio_track": ("The file has no audio track.", "LipFD compares lips with speech; pass a video with sound, or a separate WAV with --audio/audio_path."),
    "still_image": ("A single still picture where the detector needs moving video.", "Pass a video; detectors that take images (GEND-CLIP-L14) judge photos."),
    "too_short": ("The media is shorter than the detector's minimum.", "Pass a longer clip, or lower window_len/n_extract where the detector allows it."),
    "decode_failed": ("A decoder failed while reading the media (corrupt or truncated file).", "Check that the file plays; re-encode it with ffmpeg if it is damaged."),
    "stream_mismatch": ("The audio and video streams are inconsistent (e.g. the audio is far shorter than the video).", "Check the file; pass allow_stream_mismatch=true to analyse it anyway."),
    "file_too_large": ("The file is larger than the configured limit.", "Raise FORENSICS_MAX_FILE_MB (MiB; 0 means no limit)."),
    "duration_exceeds_limit": ("The media is longer than the configured limit.", "Raise FORENSICS_MAX_DURATION_S, or trim the media."),
    "resolution_exceeds_limit": ("The video frame is larger than the configured limit.", "Raise FORENSICS_MAX_PIXELS, or downscale the video."),
    "decode_timeout": ("A decoding subprocess ran past its time limit.", "Raise FORENSICS_DECODE_TIMEOUT_S, or check the file for damage."),
}


class MediaProcessingError(ForensicsError):
    """A media file could not be used. ``code`` is one of :data:`MEDIA_ERROR_CODES`."""

    exit_code = EXIT_MEDIA

    def __init__(self, code: str, message: str, *, hint: str | None = None, path: str | os.PathLike | None = None):
        if code not in MEDIA_ERROR_CODES:
            raise ValueError(f"undocumented media error code {code!r}")
        super().__init__(message, hint=hint or MEDIA_ERROR_CODES[code][1], code=code)
        self.path = None if path is None else os.fspath(path)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "path": self.path}


def is_decoder_exception(exc: BaseException) -> bool:
    """True for the exceptions that media libraries raise on bad input."""
    if isinstance(exc, (OSError, EOFError)):
        return True
    module = type(exc).__module__ or ""
    return module.split(".")[0] in {"cv2", "av", "moviepy", "soundfile", "audioread", "imageio", "imageio_ffmpeg", "librosa", "soxr"}


def as_media_error(exc: BaseException, path: str | os.PathLike | None) -> MediaProcessingError:
    """Map any exception raised while reading media to ``decode_failed``, chained to the original."""
    if isinstance(exc, MediaProcessingError):
        return exc
    err = MediaProcessingError("decode_failed", f"could not decode {os.fspath(path) if path else 'media'}: {type(exc).__name__}: {exc}", path=path)
    err.__cause__ = exc
    return err


@contextlib.contextmanager
def reading_media(path: str | os.PathLike | None) -> Iterator[None]:
    """Wrap code that reads media: any non-forensics exception becomes ``decode_failed``."""
    try:
        yield
    except ForensicsError:
        raise
    except Exception as exc:  # noqa: BLE001 - the point is to map everything a decoder throws
        raise as_media_error(exc, path) from exc

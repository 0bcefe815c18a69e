"""Resource caps (:class:`Limits`), read from ``FORENSICS_*`` variables for every input.

See docs/errors.md for the table of variables and what each cap bounds.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidOptionsError

_MIB = 1024 * 1024
_GIB = 1024 * _MIB


# --------------------------------------------------------------------------- limits


@dataclass(frozen=True)
class Limits:
    """Resource caps applied to every input before (and while) it is decoded.

    The caps exist so that one hostile or accidental input (a 200 GB file, a 30-hour
    recording, a 30000x30000 frame, a file that makes a decoder spin) cannot exhaust
    disk, memory or time on a shared machine. ``None`` means "no limit".

    Attributes:
        max_file_bytes: largest accepted file size in bytes (default 20 GiB).
            Checked by :func:`validate_path` from ``stat`` alone, before anything is
            opened. Exceeding it raises ``file_too_large``.
        max_duration_s: longest accepted media duration in seconds (default 4 h).
            Checked by :func:`probe` against the container duration (and, with
            ``exact=True``, the measured stream durations). Files whose duration is
            unknown (raw elementary streams, streamed mkv) cannot be checked here;
            decoders must rely on ``decode_timeout_s``. Raises
            ``duration_exceeds_limit``.
        max_pixels: largest accepted ``width * height`` of the video frame (default
            50 000 000: room for 8K DCI 8192x4320 and large phone photos, while one
            RGB frame stays under 150 MB). Raises ``resolution_exceeds_limit``.
        decode_timeout_s: wall-clock limit, in seconds, for each ffmpeg subprocess
            (default 120). Must be > 0. Exceeding it kills the process and raises
            ``decode_timeout``.

    Environment variables read by :meth:`from_env`:

    ``FORENSICS_MAX_FILE_MB``
        ``max_file_bytes`` in MiB (1 MiB = 1048576 bytes; fractions allowed).
    ``FORENSICS_MAX_DURATION_S``
        ``max_duration_s`` in seconds.
    ``FORENSICS_MAX_PIXELS``
        ``max_pixels`` (width times height).
    ``FORENSICS_DECODE_TIMEOUT_S``
        ``decode_timeout_s`` in seconds; must be > 0 (empty = default).

    For the three ``FORENSICS_MAX_*`` variables, ``0`` or an empty value means no limit;
    an unset variable keeps the default. Anything that is not a non-negative number
    raises :class:`~forensics_core.errors.InvalidOptionsError`.
    """

    max_file_bytes: int | None = 20 * _GIB
    max_duration_s: float | None = 4 * 3600.0
    max_pixels: int | None = 50_000_000
    decode_timeout_s: float = 120.0

    def __post_init__(self) -> None:
        for name in ("max_file_bytes", "max_duration_s", "max_pixels"):
            value = getattr(self, name)
            if value is not None and (not _finite(value) or value < 0):
                raise InvalidOptionsError(f"Limits.{name} must be None or a non-negative number, got {value!r}")
        if not _finite(self.decode_timeout_s) or self.decode_timeout_s <= 0:
            raise InvalidOptionsError(f"Limits.decode_timeout_s must be a positive number, got {self.decode_timeout_s!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """Build limits from the ``FORENSICS_*`` environment variables (see the class docstring).

        ``environ`` defaults to :data:`os.environ`; pass a dict to test or to apply a
        configuration file's values the same way.
        """
        env = os.environ if environ is None else environ
        defaults = cls()

        def cap(var: str, default: float | None, scale: float = 1.0) -> float | None:
            raw = env.get(var)
            if raw is None:
                return default
            raw = raw.strip()
            if raw == "":
                return None
            value = _parse_number(var, raw)
            return None if value == 0 else value * scale

        max_file = cap("FORENSICS_MAX_FILE_MB", defaults.max_file_bytes, _MIB)
        max_dur = cap("FORENSICS_MAX_DURATION_S", defaults.max_duration_s)
        max_pix = cap("FORENSICS_MAX_PIXELS", defaults.max_pixels)
        raw_timeout = (env.get("FORENSICS_DECODE_TIMEOUT_S") or "").strip()
        timeout = defaults.decode_timeout_s
        if raw_timeout:
            timeout = _parse_number("FORENSICS_DECODE_TIMEOUT_S", raw_timeout)
            if timeout <= 0:
                raise InvalidOptionsError(
                    "FORENSICS_DECODE_TIMEOUT_S must be > 0",
                    hint="unset it for the default (120 s), or set a large value such as 86400",
                )
        return cls(
            max_file_bytes=None if max_file is None else int(max_file),
            max_duration_s=max_dur,
            max_pixels=None if max_pix is None else int(max_pix),
            decode_timeout_s=timeout,
        )


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _parse_number(var: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise InvalidOptionsError(f"{var}={raw!r} is not a non-negative number", hint=f"set {var} to a number, or unset it")
    return value


def _limits(limits: Limits | None) -> Limits:
    return Limits.from_env() if limits is None else limits

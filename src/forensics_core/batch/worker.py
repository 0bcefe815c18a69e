"""What every scan worker does, thread or Ray actor: load the models once, turn a path into a line.

Shared by :mod:`.scan` (the thread pool) and :mod:`.ray` (Ray actors), so neither imports the other.
"""
from __future__ import annotations

import hashlib
import importlib
import os
import stat
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..detector import Detector
from ..errors import InvalidOptionsError
from ..media.paths import canonical_path, display_path, path_bytes_b64

ModelSpec = str | type[Detector] | Detector


#: Bytes per read while hashing (a cancelled scan stops between two reads).
_HASH_BLOCK = 1 << 22


class Cancelled(Exception):
    """The scan was interrupted: this file is not started (or its hashing is abandoned)."""


def file_key(path: str | os.PathLike, mode: str = "stat", cancel: threading.Event | None = None) -> dict[str, Any]:
    """The identity a resumed scan compares; a missing or unreadable file gets ``None`` values.

    ``path`` is the display form of the canonical path, with ``path_bytes`` (base64) when
    the name is not UTF-8, so the key survives JSON and names the file exactly. With
    ``sha256`` only a regular file is hashed: a FIFO or device is never read (it could
    block, or never end), and hashing stops between reads once ``cancel`` is set.
    """
    real = canonical_path(os.path.expanduser(os.fsdecode(os.fspath(path))))
    raw = path_bytes_b64(real)
    named = {"path": display_path(real), **({"path_bytes": raw} if raw else {})}
    if mode == "stat":
        try:
            st = os.stat(real)
            return {**named, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        except (OSError, ValueError):
            return {**named, "size": None, "mtime_ns": None}
    if mode == "sha256":
        return {**named, "sha256": _sha256_regular(real, cancel)}
    raise InvalidOptionsError(f"unknown key mode {mode!r}", hint="use 'stat' or 'sha256'")


def _sha256_regular(path: str, cancel: threading.Event | None) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        h = hashlib.sha256()
        while block := os.read(fd, _HASH_BLOCK):
            if cancel is not None and cancel.is_set():
                raise Cancelled(path)
            h.update(block)
        return h.hexdigest()
    except OSError:
        return None
    finally:
        os.close(fd)


def detector_class(spec: str | type[Detector]) -> type[Detector]:
    """A detector class from a class, a ``"module:Class"`` target (what Ray actors can import) or an id."""
    if isinstance(spec, type):
        return spec
    if ":" in spec:
        module, _, attr = spec.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise InvalidOptionsError(f"cannot import detector {spec!r}: {exc}", hint="use 'module:Class'") from None
    from ..plugins import get_host

    return get_host().registry.get(spec).detector_class()


def _card(spec: ModelSpec):
    """A model's card without loading it (and, for an id, without importing its code)."""
    if isinstance(spec, Detector):
        return spec.card
    if isinstance(spec, str) and ":" not in spec:
        from ..plugins import get_host

        return get_host().registry.get(spec).card
    return detector_class(spec).card


def _card_id(spec: ModelSpec) -> str:
    return _card(spec).id


def load_detectors(models: Sequence[ModelSpec], load_kwargs: dict[str, Any] | None = None,
                   model_load_kwargs: dict[str, dict[str, Any]] | None = None) -> list[Detector]:
    """Load each model once: ids via the registry, detector classes or ``"module:Class"`` directly."""
    out: list[Detector] = []
    for spec in models:
        det = spec if isinstance(spec, Detector) else detector_class(spec)()
        kwargs = {**(load_kwargs or {}), **(model_load_kwargs or {}).get(det.card.id, {})}
        if not det.loaded:
            det.load(**kwargs)
        out.append(det)
    return out


def _normalise_options(options: dict[str, dict[str, Any]] | None, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Key options by canonical detector id (aliases accepted); an unknown key fails before any work."""
    out: dict[str, dict[str, Any]] = {}
    for name, opts in (options or {}).items():
        if not opts:
            continue
        cid = next((i for i in ids if i.upper() == name.upper()), None) or _card_id(name)
        if cid not in ids:
            raise InvalidOptionsError(f"options given for {name!r}, which is not one of the models {ids}")
        out.setdefault(cid, {}).update(opts)
    return out


@dataclass(frozen=True)
class _Job:
    """What every worker (thread or Ray actor) needs besides the paths: plain, picklable data."""

    key_mode: str
    options: dict[str, dict[str, Any]]
    method: str
    load_kwargs: dict[str, Any]
    model_load_kwargs: dict[str, dict[str, Any]]
    scan_key: dict[str, Any] | None = None  # what else a resumed line must match (scan.run_key)


def _process(detectors: list[Detector], path: str, key: dict[str, Any] | None, job: _Job,
             cancel: threading.Event | None = None) -> dict[str, Any]:
    """One file -> one line. Shared by the thread pool and the Ray actors; never raises for bad media.

    Raises :class:`Cancelled` instead of starting a file once ``cancel`` is set.
    """
    from ..ensemble import run_ensemble

    if cancel is not None and cancel.is_set():
        raise Cancelled(path)
    key = key or file_key(path, job.key_mode, cancel)  # taken before analysis: a change during it triggers a rerun
    report = next(run_ensemble(detectors, [path], options=job.options, method=job.method))
    return {**report.to_dict(), "file_key": key, **({"scan_key": job.scan_key} if job.scan_key else {})}

"""What every scan worker does, thread or Ray actor: load the models once, turn a path into a line.

Shared by :mod:`.scan` (the thread pool) and :mod:`.ray` (Ray actors), so neither imports the other.
"""
from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..detector import Detector
from ..errors import InvalidOptionsError

ModelSpec = str | type[Detector] | Detector


def file_key(path: str | os.PathLike, mode: str = "stat") -> dict[str, Any]:
    """The identity a resumed scan compares; a missing or unreadable file gets ``None`` values."""
    p = Path(path).expanduser().resolve()
    if mode == "stat":
        try:
            st = p.stat()
            return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        except OSError:
            return {"path": str(p), "size": None, "mtime_ns": None}
    if mode == "sha256":
        h = hashlib.sha256()
        try:
            with p.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            return {"path": str(p), "sha256": h.hexdigest()}
        except OSError:
            return {"path": str(p), "sha256": None}
    raise InvalidOptionsError(f"unknown key mode {mode!r}", hint="use 'stat' or 'sha256'")



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


def _process(detectors: list[Detector], path: str, key: dict[str, Any] | None, job: _Job) -> dict[str, Any]:
    """One file -> one line. Shared by the thread pool and the Ray actors; never raises for bad media."""
    from ..ensemble import run_ensemble

    key = key or file_key(path, job.key_mode)  # taken before analysis: a change during it triggers a rerun
    report = next(run_ensemble(detectors, [path], options=job.options, method=job.method))
    return {**report.to_dict(), "file_key": key}

"""Checking a submission's fields before a job is queued: models, options, combine, callback, path.

Everything a worker would refuse is refused here instead, with a 4xx and a hint, so
a queued job fails only for reasons that lie in the media itself (as the CLI would).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..detector import Detector, parse_options
from ..errors import InvalidOptionsError
from .upload import UploadError
from .webhooks import check_callback


@dataclass(frozen=True)
class Served:
    """The detectors this service runs: their classes, and every name (id or alias) that selects one."""

    classes: dict[str, type[Detector]]
    names: dict[str, str]

    @classmethod
    def from_specs(cls, specs: list[str]) -> Served:
        from ..batch.worker import detector_class
        from ..plugins import get_host

        classes: dict[str, type[Detector]] = {}
        names: dict[str, str] = {}
        for spec in specs:
            klass = detector_class(spec)
            cid = klass.card.id
            classes[cid] = klass
            aliases = list(klass.card.aliases)
            if ":" not in spec:
                aliases += list(get_host().registry.get(spec).aliases)
            for name in (cid, *aliases):
                names[name.upper()] = cid
        return cls(classes, names)


def _fail(code: str, message: str, hint: str | None = None, status: int = 422) -> UploadError:
    return UploadError(status, code, message, hint)


def resolve_models(raw: list[str], served: Served) -> list[str]:
    wanted = [m.strip() for value in raw for m in value.split(",") if m.strip()]
    if not wanted:
        return list(served.classes)
    out: list[str] = []
    for name in wanted:
        cid = served.names.get(name.upper())
        if cid is None:
            raise _fail("unknown_detector", f"this service does not run detector {name!r}",
                        f"served detectors: {', '.join(served.classes)} (GET /v1/detectors)")
        if cid not in out:
            out.append(cid)
    return out


def _is_path_option(name: str) -> bool:
    return name.endswith(("_path", "_file", "_dir"))


def resolve_options(raw: str | None, models: list[str], served: Served) -> dict[str, dict[str, Any]]:
    """``{option: value}`` for every model, or ``{model: {option: value}}``; validated as the CLI validates them."""
    if raw is None or not raw.strip():
        data: Any = {}
    else:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise _fail("invalid_options", f"options are not valid JSON: {exc.msg}", 'send a JSON object, e.g. {"frames": 4}') from None
    if not isinstance(data, dict):
        raise _fail("invalid_options", "options must be a JSON object", 'e.g. {"frames": 4} or {"FAKE-VISUAL": {"frames": 4}}')
    per_model = bool(data) and all(isinstance(v, dict) and served.names.get(k.upper()) in models for k, v in data.items())
    options: dict[str, dict[str, Any]] = {m: {} for m in models}
    if per_model:
        for k, v in data.items():
            options[served.names[k.upper()]].update(v)
    else:
        for m in models:
            options[m].update(data)
    for model, opts in options.items():
        refused = [k for k in opts if _is_path_option(k)]
        if refused:
            raise _fail("option_not_allowed", f"option {refused[0]!r} names a file on the server, which clients may not do",
                        "upload the media itself; a separate audio file is not accepted by the service")
        try:
            parse_options(served.classes[model].Options, model, opts)
        except InvalidOptionsError as exc:
            raise _fail("invalid_options", exc.message, exc.hint) from None
    return {m: o for m, o in options.items() if o}


def resolve_combine(raw: str | None, models: list[str]) -> str:
    combine = (raw or "mean").strip()
    if combine not in ("mean", "max", "weighted"):
        raise _fail("invalid_request", f"combine must be mean, max or weighted, not {combine!r}")
    return combine


def resolve_callback(raw: str | None, allowed: list[str]) -> str | None:
    if raw is None or not raw.strip():
        return None
    reason = check_callback(raw.strip(), allowed)
    if reason:
        raise _fail("callback_not_allowed", reason, "ask the operator to allow the host (--webhook-host), or leave callback_url out")
    return raw.strip()


def resolve_path(raw: str, roots: list[str]) -> tuple[str, int]:
    """A server-side path under an allowed root (symlinks resolved first): ``(real path, size)``."""
    if not roots:
        raise _fail("path_not_allowed", "this service accepts uploads only", "send the file as the form part 'file'", 403)
    if "\0" in raw or not raw.strip():
        raise _fail("path_not_allowed", "not a valid path", None, 403)
    real = Path(os.path.realpath(raw.strip()))
    if not any(real.is_relative_to(root) for root in roots):
        raise _fail("path_not_allowed", "the path is not under a folder this service may read",
                    "ask the operator which folders are allowed (--allow-root)", 403)
    try:
        size = real.stat().st_size if real.is_file() else -1
    except OSError:
        size = -1
    if size < 0:
        raise _fail("file_not_found", "no such file under the allowed folders", "check the path", 422)
    return str(real), size

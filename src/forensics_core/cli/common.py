"""Helpers every command shares: errors to stderr with their exit code, --option parsing, output."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import (
    EXIT_MEDIA,
    EXIT_MODEL,
    EXIT_OK,
    EXIT_OTHER,
    EXIT_USAGE,
    ForensicsError,
)


def _fail(exc: ForensicsError) -> None:
    click.echo(f"error [{exc.code}]: {exc.message}", err=True)
    if exc.hint:
        click.echo(f"hint: {exc.hint}", err=True)
    sys.exit(exc.exit_code)


def parse_option_pairs(pairs: tuple[str, ...], model_ids: list[str]) -> dict[str, dict[str, Any]]:
    """``KEY=VALUE`` for every model, or ``MODEL.KEY=VALUE`` for one; values parsed as JSON when they parse."""
    out: dict[str, dict[str, Any]] = {m: {} for m in model_ids}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--option")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        scope, dot, name = key.rpartition(".")
        targets = [m for m in model_ids if m.upper() == scope.upper()] if dot else model_ids
        if dot and not targets:
            raise click.BadParameter(f"{pair!r} names model {scope!r}, which is not among --model {', '.join(model_ids)}", param_hint="--option")
        for m in targets:
            out[m][name if dot else key] = value
    return out


def _emit(text: str, output: str | None) -> None:
    """Write to --output atomically (a temp file beside it, then rename), else stdout."""
    if output is None:
        click.echo(text)
        return
    dest = Path(output)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _format_row(row: dict[str, Any]) -> str:
    if row["status"] == "ok":
        return f"{row['detector_id']:<12} {row['prediction']:<5} score={row['score']:.4f} confidence={row['confidence']:.4f} ({row['processing_time']:.1f} s)"
    if row["status"] == "abstained":
        return f"{row['detector_id']:<12} abstained: {row['abstain_reason']}"
    err = row["error"]
    return f"{row['detector_id']:<12} error [{err['code']}]: {err['message']}" + (f"\n{'':<13}hint: {err['hint']}" if err.get("hint") else "")


def exit_code_for(rows: list[dict[str, Any]]) -> int:
    """4 if any model/weights error, else 3 if any media error, else 2 for invalid options or settings, else 1."""
    from ..errors import MEDIA_ERROR_CODES

    codes = [r["error"]["code"] for r in rows if r["status"] == "error"]
    if any(c in {"weights_error", "unknown_detector", "not_loaded", "face_model_unavailable"} for c in codes):
        return EXIT_MODEL
    if any(c in MEDIA_ERROR_CODES for c in codes):
        return EXIT_MEDIA
    if "invalid_options" in codes:
        return EXIT_USAGE
    if codes:
        return EXIT_OTHER
    return EXIT_OK

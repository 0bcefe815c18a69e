"""The ``forensics`` command line. Results go to stdout, logs and progress to stderr.

Exit codes: 0 all ok, 1 anything else, 2 usage, 3 a media error, 4 a weights or model error.
Nothing heavy is imported at module level: ``forensics --help`` and ``forensics models`` stay fast.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from .errors import EXIT_MEDIA, EXIT_MODEL, EXIT_OK, EXIT_OTHER, EXIT_USAGE, ForensicsError


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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="forensics")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="warning", show_default=True, envvar="FORENSICS_LOG_LEVEL")
@click.option("--log-format", type=click.Choice(["console", "json"]), default="console", show_default=True, envvar="FORENSICS_LOG_FORMAT")
def main(log_level: str, log_format: str) -> None:
    """Run media-forensics detectors side by side."""
    from .logs import configure

    configure(log_level, log_format)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the cards as JSON.")
def models(as_json: bool) -> None:
    """List the detectors (reads their cards; imports no detector code)."""
    from . import list_models

    cards = list_models()
    if as_json:
        click.echo(json.dumps(cards, indent=2))
        return
    for card in cards:
        aliases = f" (aliases: {', '.join(card['aliases'])})" if card["aliases"] else ""
        click.echo(f"{card['id']:<14} {card['name']} {card['version']}{aliases}")
        click.echo(f"  modalities: {', '.join(card['modalities'])}; plugin: {card['plugin']}")
        click.echo(f"  {card['summary']}")


@main.command()
@click.option("--json", "as_json", is_flag=True)
def plugins(as_json: bool) -> None:
    """List discovered plugins and whether they loaded."""
    from . import get_plugins

    rows = get_plugins()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['name']:<20} {row['status']:<9} {row['source']}")
        if row["detectors"]:
            click.echo(f"  detectors: {', '.join(row['detectors'])}")
        if row["error"]:
            click.echo(f"  error: {row['error']}")


@main.command()
def schema() -> None:
    """Print the JSON Schema of a detection result."""
    from .results import result_json_schema

    click.echo(json.dumps(result_json_schema(), indent=2))


@main.command()
@click.argument("detector_id")
@click.option("--force", is_flag=True, help="Download again even if the cached file is valid.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def pull(detector_id: str, force: bool, quiet: bool) -> None:
    """Download a detector's weights into the cache (FORENSICS_HOME)."""
    from .plugins import get_host
    from .weights import pull as pull_weights

    try:
        card = get_host().registry.get(detector_id).card
        if card.weights is None:
            raise ForensicsError(f"{card.id} declares no weights to download")
        path = pull_weights(card.id, card.weights, force=force, progress=False if quiet else None)
    except ForensicsError as exc:
        _fail(exc)
    click.echo(str(path))


@main.command()
@click.argument("detector_id")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.argument("output", type=click.Path(dir_okay=False))
def convert(detector_id: str, checkpoint: str, output: str) -> None:
    """Convert a checkpoint to safetensors holding only what inference needs."""
    from .plugins import get_host

    try:
        entry = get_host().registry.get(detector_id)
        cls = entry.detector_class()
        if not hasattr(cls, "convert_weights"):
            raise ForensicsError(f"{entry.card.id} has no weights converter")
        info = cls.convert_weights(checkpoint, output)
    except ForensicsError as exc:
        _fail(exc)
    click.echo(json.dumps({"output": output, **info}))


def _format_row(row: dict[str, Any]) -> str:
    if row["status"] == "ok":
        return f"{row['detector_id']:<12} {row['prediction']:<5} score={row['score']:.4f} confidence={row['confidence']:.4f} ({row['processing_time']:.1f} s)"
    if row["status"] == "abstained":
        return f"{row['detector_id']:<12} abstained: {row['abstain_reason']}"
    err = row["error"]
    return f"{row['detector_id']:<12} error [{err['code']}]: {err['message']}" + (f"\n{'':<13}hint: {err['hint']}" if err.get("hint") else "")


def exit_code_for(rows: list[dict[str, Any]]) -> int:
    """4 if any model/weights error, else 3 if any media error, else 2 for invalid options or settings, else 1."""
    from .errors import MEDIA_ERROR_CODES

    codes = [r["error"]["code"] for r in rows if r["status"] == "error"]
    if any(c in {"weights_error", "unknown_detector", "not_loaded"} for c in codes):
        return EXIT_MODEL
    if any(c in MEDIA_ERROR_CODES for c in codes):
        return EXIT_MEDIA
    if "invalid_options" in codes:
        return EXIT_USAGE
    if codes:
        return EXIT_OTHER
    return EXIT_OK


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--model", "-m", "model_ids", multiple=True, default=("LIPFD-V1",), show_default=True, help="Detector id (repeatable: an ensemble).")
@click.option("--weights", type=click.Path(dir_okay=False), help="Weights file (single model only).")
@click.option("--audio", "audio_path", type=click.Path(dir_okay=False), help="Separate audio file (LipFD's audio_path).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default="fp32", show_default=True)
@click.option("--option", "-o", "option_pairs", multiple=True, metavar="[MODEL.]KEY=VALUE", help="Detector option (repeatable).")
@click.option("--combine", type=click.Choice(["mean", "max", "weighted"]), default="mean", show_default=True, help="Ensemble verdict from ok rows.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one result object; JSON lines for several files or models).")
@click.option("--output", type=click.Path(dir_okay=False), help="Write the output to FILE instead of stdout.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def analyze(paths, model_ids, weights, audio_path, device, precision, option_pairs, combine, as_json, output, quiet) -> None:
    """Analyse media files; one bad file never stops the others."""
    from . import get_detector
    from .ensemble import run_ensemble, run_one

    model_ids = list(dict.fromkeys(model_ids))
    if weights and len(model_ids) > 1:
        raise click.UsageError("--weights applies to a single --model")
    options = parse_option_pairs(option_pairs, model_ids)
    if audio_path:
        if len(paths) > 1:
            raise click.UsageError("--audio applies to a single video")
        for opts in options.values():
            opts["audio_path"] = audio_path
    try:
        detectors, by_id = [], {}
        for model_id in model_ids:
            det = get_detector(model_id)
            if det.card.id in by_id:
                raise click.UsageError(f"--model {model_id} names {det.card.id} twice")
            det.parse_options(**options[model_id])  # options are checked before any weights are read
            detectors.append(det)
            by_id[det.card.id] = options[model_id]
        for det in detectors:
            det.load(device=device, precision=precision, weights=weights)
    except ForensicsError as exc:
        _fail(exc)

    progress = None
    if not quiet and sys.stderr.isatty() and len(paths) > 1:
        from tqdm import tqdm

        progress = tqdm(total=len(paths), unit="file", file=sys.stderr)
    docs: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    try:
        if len(detectors) == 1:
            for path in paths:
                row = run_one(detectors[0], path, by_id[detectors[0].card.id]).to_dict()
                rows.append(row)
                docs.append(row)
                if progress:
                    progress.update()
        else:
            for report in run_ensemble(detectors, paths, options=by_id, method=combine):
                doc = report.to_dict()
                rows.extend(doc["results"])
                docs.append(doc)
                if progress:
                    progress.update()
    finally:
        if progress:
            progress.close()
    if as_json:
        text = json.dumps(docs[0], indent=2) if len(docs) == 1 and len(detectors) == 1 else "\n".join(json.dumps(d) for d in docs)
    else:
        lines = []
        for doc in docs:
            lines.append(doc["media_path"])
            for row in doc.get("results", [doc]):
                lines.append("  " + _format_row(row))
            if "combined" in doc:
                c = doc["combined"]
                lines.append(f"  {'combined':<12} " + (f"{c['prediction']:<5} score={c['score']:.4f} ({c['method']} of {', '.join(c['detectors_used'])})" if c["status"] == "ok" else f"abstained: {c['reason']}"))
        text = "\n".join(lines)
    _emit(text, output)
    sys.exit(exit_code_for(rows))


from .cli_scan import evaluate_command, scan_command  # noqa: E402 - they import helpers from this module

main.add_command(scan_command, "scan")
main.add_command(evaluate_command, "evaluate")

__all__ = ["main", "EXIT_USAGE"]

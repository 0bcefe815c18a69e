"""``forensics scan`` and ``forensics evaluate``: thin click wrappers over :mod:`forensics_core.batch`.

Helpers shared with ``forensics analyze`` (option parsing, error printing, exit codes)
come from :mod:`.common`; the scanning machinery is imported inside the commands, so
``forensics --help`` stays fast.
The summary goes to stdout (JSON with ``--json``); logs and the progress bar to stderr.
Exit codes: 0 all ok, 1 other, 2 usage, 3 some media errors, 4 model/weights errors, 130 interrupted.
"""
from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import click

from ..errors import EXIT_MEDIA, EXIT_OK, EXIT_OTHER, ForensicsError
from .common import _fail, exit_code_for, parse_option_pairs

EXIT_INTERRUPTED = 130


def _common_options(fn: Callable) -> Callable:
    """The options that ``scan`` and ``evaluate`` (which may scan first) share."""
    decorators = [
        click.option("--weights", type=click.Path(dir_okay=False), help="Weights file (single model only)."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default="fp32", show_default=True),
        click.option("--option", "-o", "option_pairs", multiple=True, metavar="[MODEL.]KEY=VALUE",
                     help="Detector option (repeatable); VALUE is parsed as JSON when it parses."),
        click.option("--key", type=click.Choice(["stat", "sha256"]), default="stat", show_default=True,
                     help="How resume recognises an unchanged file: size+mtime, or content hash."),
        click.option("--resume/--no-resume", default=True, show_default=True,
                     help="Skip files already in the output (--no-resume starts the output afresh)."),
        click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
                     help="Files analysed at once (threads, or Ray actors)."),
        click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True),
        click.option("--address", help="Ray cluster address (default: start a local one)."),
        click.option("--combine", "method", type=click.Choice(["mean", "max"]), default="mean", show_default=True,
                     help="Combined verdict of several models."),
        click.option("--include-audio", is_flag=True, help="Also pick up audio-only files in folders."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
        click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON."),
    ]
    return functools.reduce(lambda f, d: d(f), reversed(decorators), fn)


def _scan_kwargs(models: list[str], weights, device, precision, option_pairs, key, resume, workers, backend,
                 address, method, include_audio, quiet) -> dict[str, Any]:
    if weights and len(models) > 1:
        raise click.UsageError("--weights applies to a single --model")
    load_kwargs: dict[str, Any] = {"device": device, "precision": precision}
    if weights:
        load_kwargs["weights"] = weights
    return {"load_kwargs": load_kwargs, "options": parse_option_pairs(tuple(option_pairs), models), "key": key,
            "resume": resume, "workers": workers, "backend": backend, "ray_address": address, "method": method,
            "include_audio": include_audio, "progress": False if quiet else None}


def _guarded(fn: Callable[[], int]) -> None:
    """Run a command body; map errors to the documented exit codes."""
    try:
        code = fn()
    except ForensicsError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except (click.ClickException, click.exceptions.Exit):
        raise
    except Exception as exc:  # noqa: BLE001 - a clean message and exit 1, the traceback in the log
        from ..logs import get_logger

        get_logger("forensics.cli").error("command failed", error=repr(exc), exc_info=True)
        click.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(EXIT_OTHER)
    sys.exit(code)


def _summary_exit_code(summary) -> int:
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return exit_code_for([{"status": "error", "error": {"code": c}} for c in summary.error_codes])


@click.command("scan")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(), metavar="DIR|LIST|FILE...")
@click.option("--model", "-m", "models", multiple=True, default=("LIPFD-V1",), show_default=True,
              help="Detector id (repeatable: an ensemble).")
@click.option("--output", type=click.Path(dir_okay=False), default="results.jsonl", show_default=True,
              help="JSON-lines output, one line per file; appended to when resuming.")
@_common_options
def scan_command(inputs, models, output, as_json, **kwargs) -> None:
    """Analyse every media file in folders, .txt/.lst path lists and files, into a resumable JSONL file.

    Rerunning the same command skips the files already done (Ctrl-C is safe).
    """
    def body() -> int:
        from ..batch.scan import scan

        models_ = list(dict.fromkeys(models))
        summary = scan(list(inputs), models_, output, **_scan_kwargs(models_, **kwargs))
        if as_json:
            click.echo(summary.model_dump_json())
        else:
            codes = ", ".join(f"{c}: {n}" for c, n in summary.error_codes.items())
            click.echo(f"{summary.total} files ({summary.analyzed} analysed, {summary.skipped_resumed} resumed): "
                       f"{summary.ok} ok, {summary.abstained} abstained, {summary.error} error"
                       + (f" [{codes}]" if codes else "") + f" in {summary.seconds:.1f} s"
                       + (" - INTERRUPTED, rerun to resume" if summary.interrupted else ""))
            click.echo(f"results: {summary.output}")
        return _summary_exit_code(summary)

    _guarded(body)


@click.command("evaluate")
@click.argument("labels", type=click.Path(exists=True), metavar="LABELS")
@click.option("--results", type=click.Path(exists=True, dir_okay=False),
              help="An existing scan JSONL to evaluate (else LABELS' files are scanned, into OUTPUT_DIR/results.jsonl if given).")
@click.option("--output-dir", type=click.Path(file_okay=False),
              help="Also write report.json, report.md, roc.svg and pr.svg (and the scan's results.jsonl) here.")
@click.option("--segments", type=click.Path(exists=True, dir_okay=False),
              help="Ground-truth fake segments, JSON {file name: [[start_s, end_s], ...]}: adds localisation AP/AR.")
@click.option("--model", "-m", "models", multiple=True, help="Detector id for the scan (repeatable; default LIPFD-V1).")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Score at or above which a video is called fake.")
@click.option("--detector", help="Whose rows to score: a detector id or 'combined' (default: the only one, else combined).")
@_common_options
def evaluate_command(labels, results, output_dir, segments, models, threshold, detector, as_json, **kwargs) -> None:
    """Score detectors against labels: a folder with 0_real/ and 1_fake/, or a path,label CSV.

    The summary metrics are printed; --output-dir also writes the report files.
    """
    def body() -> int:
        from pathlib import Path

        from ..batch.evaluate import evaluate
        from ..batch.evaluate_files import misclassified

        models_ = list(dict.fromkeys(models or ("LIPFD-V1",)))
        scan_kwargs = {} if results else _scan_kwargs(models_, **kwargs)
        report = evaluate(labels, results=results, models=None if results else models_, output_dir=output_dir,
                          threshold=threshold, detector=detector, segments=segments, **scan_kwargs)
        video = report.video.summary
        loc = report.localisation
        if as_json:
            click.echo(json.dumps({"output_dir": str(Path(output_dir).resolve()) if output_dir else None,
                                   "detector_ids": report.detector_ids,
                                   "coverage": report.coverage, "counts": report.counts.model_dump(),
                                   "video": video.model_dump(),
                                   "window": report.window.summary.model_dump() if report.window else None,
                                   "misclassified": [v.media_path for v in misclassified(report)],
                                   **({"localisation": loc.model_dump()} if loc else {})}))
        else:
            fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
            c = report.counts
            click.echo(f"{video.n} videos scored ({video.n_real} real, {video.n_fake} fake); coverage {fmt(report.coverage)}; "
                       f"{c.abstained} abstained, {c.error} error, {c.missing} missing, {c.unlabeled} unlabeled")
            click.echo(f"ROC AUC {fmt(video.roc_auc)}  AP {fmt(video.ap)}  accuracy {fmt(video.acc)}  "
                       f"balanced {fmt(video.balanced_acc)}  EER {fmt(video.eer)}  at threshold {threshold}")
            click.echo(f"misclassified at threshold {threshold}: {video.fp} real called fake, {video.fn} fake called real")
            if loc:
                click.echo("localisation AP@IoU " + "  ".join(f"{k}: {fmt(v)}" for k, v in loc.ap.items())
                           + "  (textbook " + "  ".join(f"{k}: {fmt(v)}" for k, v in loc.ap_textbook.items()) + ")")
                click.echo("localisation AR@N   " + "  ".join(f"{k}: {fmt(v)}" for k, v in loc.ar.items()))
            if output_dir:
                click.echo(f"report: {Path(output_dir).resolve() / 'report.md'}")
        return EXIT_MEDIA if report.counts.error else EXIT_OK

    _guarded(body)

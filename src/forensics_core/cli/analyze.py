"""``forensics analyze``: one or more files, one or more detectors, a row (or a document) per file."""
from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any

import click

from ..errors import ForensicsError
from .common import _emit, _fail, _format_row, exit_code_for, parse_option_pairs

ALL = "all"


def expand_all(model_ids) -> list[str]:
    """``all`` (any case) stands for every installed detector, in registry order; duplicates go."""
    from ..plugins import get_host

    out: list[str] = []
    for model_id in model_ids:
        if model_id.lower() == ALL:
            out.extend(entry.card.id for entry in get_host().registry)
        else:
            out.append(model_id)
    return list(dict.fromkeys(out))


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--model", "-m", "model_ids", multiple=True, default=("LIPFD-V1",), show_default=True,
              help="Detector id (repeatable: an ensemble); 'all': every installed detector, each on the files it can judge.")
@click.option("--weights", type=click.Path(dir_okay=False), help="Weights file (single model only).")
@click.option("--audio", "audio_path", type=click.Path(dir_okay=False), help="Separate audio file (LipFD's audio_path).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default="fp32", show_default=True)
@click.option("--option", "-o", "option_pairs", multiple=True, metavar="[MODEL.]KEY=VALUE", help="Detector option (repeatable).")
@click.option("--combine", type=click.Choice(["mean", "max", "weighted"]), default="mean", show_default=True, help="Ensemble verdict from ok rows.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one result object; JSON lines for several files or models).")
@click.option("--output", type=click.Path(dir_okay=False), help="Write the output to FILE instead of stdout.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), help="Also write a self-contained HTML report to FILE.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def analyze(paths, model_ids, weights, audio_path, device, precision, option_pairs, combine, as_json, output, report_path, quiet) -> None:
    """Analyse media files; one bad file never stops the others."""
    from .. import get_detector
    from ..ensemble import run_ensemble, run_one
    from ..progress import for_terminal, reporting

    model_ids = expand_all(model_ids)
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
    stages = contextlib.ExitStack()
    if len(paths) == 1:  # one file: its stages (probe, audio, frames, model ...) as the detector reports them
        stages.enter_context(reporting(for_terminal(os.path.basename(click.format_filename(paths[0])), quiet=quiet)))
    captured = None
    if report_path:  # keep the images the detectors see now, so the report decodes nothing again
        from ..report import capture_evidence

        captured = stages.enter_context(capture_evidence())
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
        stages.close()
        if progress:
            progress.close()
    if report_path:
        from ..report import write_html

        written = write_html(docs, report_path, capture=captured, detectors={d.card.id: d for d in detectors})
        click.echo(f"report: {written.resolve()}", err=True)
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
                if c.get("summary"):
                    lines.append(f"  {'evidence':<12} {c['summary']}")
                    lines.extend(f"  {'':<12} - {reason}" for reason in c.get("reasons", []))
        text = "\n".join(lines)
    _emit(text, output)
    sys.exit(exit_code_for(rows))

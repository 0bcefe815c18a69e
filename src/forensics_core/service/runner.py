"""One job -> the document ``forensics analyze --json`` prints for the same file and options.

The same functions as the CLI do the work (``run_one`` for one detector,
``run_ensemble`` for several), so the two cannot drift apart. Two things differ, on
purpose, and only in presentation:

* the spool's path of an upload never appears in a result: ``media_path`` (and any
  message that quoted the path) shows the client's file name instead;
* the job's status follows the CLI's exit code: ``succeeded`` where the CLI exits 0,
  ``failed`` (with the first row's typed error code and hint) where it would not.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..cli.common import exit_code_for
from ..detector import Detector
from ..ensemble import run_ensemble, run_one


@dataclass
class Outcome:
    status: str                    # succeeded | failed
    result: dict[str, Any]         # the CLI's document
    error: dict[str, Any] | None   # {type, code, message, hint} of the first failed row
    report: str | None = None      # the HTML report, made while the media was at hand

    @property
    def result_text(self) -> str:
        return json.dumps(self.result)


def redact(obj: Any, real: str, shown: str) -> Any:
    """Replace the spool path (as given and as resolved) by the display name, in every string."""
    variants = sorted({real, os.path.realpath(real)}, key=len, reverse=True)
    if isinstance(obj, str):
        for v in variants:
            obj = obj.replace(v, shown)
        return obj
    if isinstance(obj, dict):
        return {k: redact(v, real, shown) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v, real, shown) for v in obj]
    return obj


def run_job(detectors: dict[str, Detector], models: list[str], options: dict[str, dict[str, Any]], combine: str,
            path: str, shown: str | None, on_progress: Callable[[int, int, str], None] | None = None,
            report: bool = True) -> Outcome:
    """Analyse ``path`` with ``models`` (detector ids, all loaded in ``detectors``) as the CLI would.

    With ``report``, the HTML report is rendered right after, while the upload still exists
    (its window images come from the media), with the evidence captured during the analysis.
    """
    import contextlib

    dets = [detectors[m] for m in models]
    total = len(dets)
    if on_progress:
        on_progress(0, total, dets[0].card.id)
    capture = _capture() if report else contextlib.nullcontext()
    with capture as cap:
        if total == 1:
            doc = run_one(dets[0], path, options.get(dets[0].card.id, {})).to_dict()
        else:
            done = [0]

            def row_done(row) -> None:
                done[0] += 1
                if on_progress and done[0] < total:
                    on_progress(done[0], total, dets[done[0]].card.id)

            doc = next(run_ensemble(dets, [path], options=options, method=combine, on_row=row_done)).to_dict()
    html = _report(doc, cap, {d.card.id: d for d in dets}) if report else None
    if shown is not None:
        doc = redact(doc, path, shown)
        html = _redact_html(html, path, shown) if html else None
    rows = doc["results"] if total > 1 else [doc]
    failed = next((r["error"] for r in rows if r["status"] == "error"), None)
    return Outcome("succeeded" if exit_code_for(rows) == 0 else "failed", doc, failed, html)


def _capture():
    from ..report import capture_evidence

    return capture_evidence()


def _report(doc: dict[str, Any], capture, detectors: dict[str, Detector]) -> str | None:
    """The report, or None if it cannot be made (the job's result stands on its own)."""
    from ..logs import get_logger
    from ..report import render_html

    try:
        return render_html([doc], capture=capture, detectors=detectors)
    except Exception as exc:  # noqa: BLE001 - a report problem never fails the analysis
        get_logger("forensics.service").warning("report failed", error=repr(exc), exc_info=True)
        return None


def _redact_html(html: str, real: str, shown: str) -> str:
    import html as html_lib

    for v in sorted({real, os.path.realpath(real)}, key=len, reverse=True):
        html = html.replace(html_lib.escape(v), html_lib.escape(shown)).replace(v, html_lib.escape(shown))
    return html

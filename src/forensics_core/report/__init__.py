"""Self-contained HTML reports of results: verdicts in words, a timeline, the images the model saw.

    >>> from forensics_core.report import render_html
    >>> html = render_html([result])            # results, ensemble documents or scan lines
    >>> write_html(read_documents("results.jsonl"), "report.html")

One file, no network: inline CSS and SVG, images as data URIs, a Content-Security-Policy
that forbids every fetch, an optional inline script (sorting) allowed by its hash, and a
print stylesheet. Jinja2 escapes every string from a result. Images come from the
analysis itself (``capture``, see :mod:`forensics_core.evidence_images`) or are recomputed by
each detector's :meth:`~forensics_core.detector.Detector.evidence` from the media.
"""
from __future__ import annotations

import base64
import datetime as _dt
import functools
import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from ..evidence_images import EvidenceCapture, capturing
from .build import IMAGE_BUDGET_BYTES, MAX_WINDOW_IMAGES, capture_thumbnail, file_views
from .documents import FileDoc, as_file_doc, read_documents

__all__ = ["render_html", "write_html", "read_documents", "capture_evidence", "FileDoc",
           "MAX_WINDOW_IMAGES", "IMAGE_BUDGET_BYTES"]


@functools.lru_cache(maxsize=1)
def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(loader=PackageLoader("forensics_core.report", "templates"), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _asset(name: str) -> str:
    return resources.files("forensics_core.report").joinpath("templates", name).read_text(encoding="utf-8")


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def capture_evidence(limit: int = MAX_WINDOW_IMAGES):
    """Context manager: capture thumbnails of the images detectors offer while analysing (``analyze --report``).

    ``limit``: windows per detector and file, the highest-scoring, as the report chooses them.
    """
    return capturing(capture_thumbnail, limit=limit)


def render_html(documents: Iterable[Any], *, title: str | None = None, capture: EvidenceCapture | None = None,
                detectors: Mapping[str, Any] | None = None, images: bool = True, max_windows: int = MAX_WINDOW_IMAGES,
                image_budget: int = IMAGE_BUDGET_BYTES, script: bool = True,
                progress: Callable[[int, int], None] | None = None) -> str:
    """The report as one HTML string.

    ``documents``: results (``DetectionResult`` or dicts), ensemble documents or scan lines.
    ``capture``: evidence captured during the analyses; for the rest, each detector's
    ``evidence()`` recomputes the images from the media (``detectors``: loaded instances
    by id to use; others are looked up unloaded). ``images=False`` leaves pictures out.
    ``max_windows``: windows per detector and file with pictures (the highest scores).
    """
    from markupsafe import Markup

    from .. import __version__

    docs = [d if isinstance(d, FileDoc) else as_file_doc(d) for d in documents]
    files = file_views(docs, capture=capture, detectors=detectors, images=images, max_windows=max_windows,
                       image_budget=image_budget, progress=progress)
    index = sorted(files, key=lambda f: (f.score is None, -(f.score or 0.0), f.index))
    css, js = _asset("report.css"), _asset("sort.js") if script and len(files) > 1 else ""
    csp = (f"default-src 'none'; img-src data:; style-src {_hash(css)}; "
           + (f"script-src {_hash(js)}; " if js else "script-src 'none'; ")
           + "base-uri 'none'; form-action 'none'")
    if title is None:
        title = f"Forensics report: {files[0].name}" if len(files) == 1 else f"Forensics report: {len(files)} files"
    return _environment().get_template("report.html.j2").render(
        title=title, files=files, index=index, css=Markup(css), script=Markup(js), csp=csp, version=__version__,
        created=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


def write_html(documents: Iterable[Any], output: str | os.PathLike, **kwargs: Any) -> Path:
    """Render and write atomically (a temporary file beside ``output``, then a rename)."""
    html = render_html(documents, **kwargs)
    dest = Path(output)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest

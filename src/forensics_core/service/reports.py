"""GET /v1/analyses/{id}/report: the HTML evidence report of a finished job.

Workers render the report (:mod:`forensics_core.report`) when the job finishes, while
the upload still exists, so its window images come from the media; it is kept in the
spool beside the uploads and deleted with its job. A job without a stored report
(one that was cancelled, or whose report could not be made) gets one rendered from
its result document alone, without images: the media is gone by then.
"""
from __future__ import annotations

import json
from typing import Any

from .spool import Spool


def render(job: dict[str, Any], spool: Spool) -> str:
    if job.get("report_name"):
        try:
            return spool.report_path(job["report_name"]).read_text(encoding="utf-8")
        except FileNotFoundError:
            pass
    from ..report import render_html
    from .runner import _redact_html

    doc = json.loads(job["result"])
    if not job.get("spool_name") and not job.get("source_path"):
        # The upload is gone. Point the report at a spool path that cannot exist (never at the
        # client's bare file name, which would be looked up in this process's folder), then
        # show the client's name in its place.
        gone = str(spool.uploads / f"{job['id']}.deleted")
        doc = _set_media_path(doc, job["media_name"], gone)
        return _redact_html(render_html([doc], images=False), gone, job["media_name"])
    return render_html([doc], images=False)


def _set_media_path(obj: Any, old: str, new: str) -> Any:
    if isinstance(obj, dict):
        return {k: (new if k == "media_path" and v == old else _set_media_path(v, old, new)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_set_media_path(v, old, new) for v in obj]
    return obj

"""GET /v1/analyses/{id}/report: the HTML evidence report of a finished job.

The report is rendered by :mod:`forensics_core.report` from the job's result
document (the same document the CLI prints); nothing but the spool is read.
"""
from __future__ import annotations

import json
from typing import Any

from .spool import Spool


def render(job: dict[str, Any], spool: Spool) -> str:
    from ..report import render_html  # the report room; see docs/service.md

    return render_html(json.loads(job["result"]))

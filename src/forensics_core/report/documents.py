"""Reading results for a report: one result, an ensemble document, or a scan's JSON lines.

Every shape becomes a :class:`FileDoc` (a file, its detector rows, the combined verdict
when there is one), so the rest of the report reads one shape. A line that is not a
result becomes a FileDoc with a problem, shown in the report, never a crash.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidOptionsError


@dataclass
class FileDoc:
    media_path: str
    results: list[dict[str, Any]]
    combined: dict[str, Any] | None = None
    file_key: dict[str, Any] | None = None
    problem: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def as_file_doc(doc: Any) -> FileDoc:
    """Normalise a result (``DetectionResult`` or its dict), an ensemble document or a scan line."""
    if hasattr(doc, "to_dict"):
        doc = doc.to_dict()
    if not isinstance(doc, dict) or not isinstance(doc.get("media_path"), str):
        return FileDoc(media_path="(unknown file)", results=[], problem="this entry is not a forensics result")
    if isinstance(doc.get("results"), list):
        rows = [r for r in doc["results"] if isinstance(r, dict) and r.get("status") in ("ok", "abstained", "error")]
        problem = None if len(rows) == len(doc["results"]) else "some rows of this entry are not results and are left out"
        combined = doc.get("combined") if isinstance(doc.get("combined"), dict) else None
        extra = {k: v for k, v in doc.items() if k not in ("media_path", "results", "combined", "file_key")}
        return FileDoc(doc["media_path"], rows, combined, doc.get("file_key"), problem, extra)
    if doc.get("status") in ("ok", "abstained", "error") and isinstance(doc.get("detector_id"), str):
        return FileDoc(doc["media_path"], [doc])
    return FileDoc(doc["media_path"], [], problem="this entry has no detector result")


def read_documents(source: str | os.PathLike | None) -> list[FileDoc]:
    """Results from a ``.json`` (one object or a list) or JSON-lines file; ``-`` or None reads stdin."""
    if source is None or os.fspath(source) == "-":
        text, name = sys.stdin.read(), "stdin"
    else:
        path = Path(source).expanduser()
        try:
            text, name = path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise InvalidOptionsError(f"cannot read {str(path)!r}: {exc.strerror or exc}",
                                      hint="pass a results file from `forensics analyze --json` or `forensics scan`") from None
        except UnicodeDecodeError:
            raise InvalidOptionsError(f"{path} is not a text file",
                                      hint="pass a results file from `forensics analyze --json` or `forensics scan`") from None
    text = text.strip()
    if not text:
        raise InvalidOptionsError(f"{name} holds no results", hint="it is empty")
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, list):
        return [as_file_doc(d) for d in whole]
    if isinstance(whole, dict):
        return [as_file_doc(whole)]
    docs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            docs.append(as_file_doc(json.loads(line)))
        except ValueError:
            docs.append(FileDoc(media_path=f"(line {number})", results=[],
                                problem=f"line {number} of {name} is not JSON (a partial line from an interrupted scan?)"))
    return docs

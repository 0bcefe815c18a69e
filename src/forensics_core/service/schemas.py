"""The API's response bodies (they are the OpenAPI schema's components) and how a job row becomes one."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]

#: the multipart request body of POST /v1/analyses (read by a streaming parser, so declared by hand)
SUBMISSION_BODY: dict[str, Any] = {
    "required": True,
    "content": {"multipart/form-data": {"schema": {
        "type": "object",
        "properties": {
            "file": {"type": "string", "format": "binary", "description": "the media file (or give `path`)"},
            "path": {"type": "string", "description": "a file under a root the operator allowed (--allow-root), instead of `file`"},
            "models": {"type": "string", "description": "detector ids or aliases, comma-separated (default: every served detector)"},
            "options": {"type": "string", "description": "JSON object: {option: value} for every model, or {model: {option: value}}"},
            "combine": {"type": "string", "enum": ["mean", "max", "weighted"], "description": "ensemble verdict (several models)"},
            "callback_url": {"type": "string", "description": "webhook called when the job finishes (allowed hosts only)"},
        },
    }}},
}


class ErrorBody(BaseModel):
    code: str = Field(description="stable, machine-readable")
    message: str
    hint: str | None = Field(default=None, description="how to fix it")


class ErrorResponse(BaseModel):
    error: ErrorBody


class JobError(BaseModel):
    type: str
    code: str
    message: str
    hint: str | None = None


class Media(BaseModel):
    name: str = Field(description="the client's file name (display only), or the submitted path")
    bytes: int


class Links(BaseModel):
    self: str
    report: str | None = None


class Analysis(BaseModel):
    id: str
    status: Status
    progress: float = Field(ge=0, le=1)
    stage: str
    models: list[str]
    options: dict[str, dict[str, Any]]
    combine: str
    media: Media
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    expires_at: str | None = Field(default=None, description="when retention deletes the finished job")
    attempts: int = Field(description="times a worker claimed the job (more than 1 after a worker stopped)")
    result: dict[str, Any] | None = Field(default=None, description="when finished: the document `forensics analyze --json` prints")
    error: JobError | None = Field(default=None, description="when failed: the typed error (a media error's code and hint)")
    links: Links


class AnalysisList(BaseModel):
    items: list[Analysis] = Field(description="newest first; `result` is left out (fetch the job for it)")
    total: int
    limit: int
    offset: int
    next_offset: int | None = None


class WeightsState(BaseModel):
    present: bool
    sha256: str | None = None
    expected_sha256: str | None = None
    matches: bool | None = None
    problem: str | None = None


class DetectorInfo(BaseModel):
    id: str
    served: bool = Field(description="this service accepts jobs for it (--models)")
    loaded: bool = Field(description="a live worker has it loaded")
    weights: WeightsState | None = None
    card: dict[str, Any]


class DetectorList(BaseModel):
    detectors: list[DetectorInfo]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    reason: str | None = None
    workers_ready: int
    models_loaded: list[str]
    queued: int
    queue_size: int
    database: str


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


def analysis_view(job: dict[str, Any], retention_s: float, *, with_result: bool = True) -> Analysis:
    terminal = job["status"] in ("succeeded", "failed", "cancelled")
    href = f"/v1/analyses/{job['id']}"
    result = json.loads(job["result"]) if with_result and job.get("result") else None
    return Analysis(
        id=job["id"], status=job["status"], progress=job["progress"], stage=job["stage"],
        models=json.loads(job["models"]), options=json.loads(job["options"]), combine=job["combine"],
        media=Media(name=job["media_name"], bytes=job["media_bytes"]),
        created_at=iso(job["created_at"]), started_at=iso(job["started_at"]), finished_at=iso(job["finished_at"]),
        expires_at=iso(job["finished_at"] + retention_s) if terminal and job["finished_at"] else None,
        attempts=job["attempts"], result=result,
        error=JobError(**json.loads(job["error"])) if job.get("error") else None,
        links=Links(self=href, report=f"{href}/report" if job.get("result") else None),
    )

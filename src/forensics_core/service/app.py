"""The HTTP API (FastAPI): routes, keys, limits and error bodies.

Every error is ``{"error": {"code", "message", "hint"}}`` with a 4xx status; a
media problem is never an HTTP error at all but a ``failed`` job with the typed
code, as the CLI reports it. Handlers that touch the database are plain ``def``
(FastAPI runs them in its thread pool); the upload handler is ``async`` because it
reads the body as it streams in.
"""
import json
import re
import secrets
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..logs import get_logger
from . import page
from .config import ServiceConfig
from .detectors import DetectorCatalog
from .jobs import JobStore, QueueFull
from .keys import KeyStore
from .schemas import (
    SUBMISSION_BODY,
    Analysis,
    AnalysisList,
    DetectorList,
    ErrorResponse,
    Health,
    Readiness,
    analysis_view,
)
from .spool import Spool, display_name
from .store import STATUSES, describe_url
from .submission import (
    Served,
    resolve_callback,
    resolve_combine,
    resolve_models,
    resolve_options,
    resolve_path,
)
from .upload import UploadError, read_submission

log = get_logger("forensics.service.api")

JOB_ID = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="the job id")]
_IDEMPOTENCY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text} for code, text in {
        401: "no valid API key (Authorization: Bearer KEY)", 404: "no such job for this key", 422: "invalid request"}.items()}


_JSON_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
_HTML_ROUTE_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {**_JSON_ERROR, "description": text} for code, text in {
        401: "no valid API key", 404: "no such job for this key", 409: "the job has not finished", 422: "invalid request"}.items()}


def _error(status: int, code: str, message: str, hint: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "hint": hint}}, status_code=status, headers=headers)


def create_app(config: ServiceConfig, store: JobStore, keys: KeyStore, spool: Spool, served: Served) -> FastAPI:
    app = FastAPI(title="forensics", version="1", summary="Media-forensics detectors as a service: upload, poll, report.",
                  docs_url="/docs", redoc_url=None)
    catalog = DetectorCatalog(config, served)
    bearer = HTTPBearer(auto_error=False, description="an API key from `forensics serve keys create`")

    # ------------------------------------------------------------------ errors
    @app.exception_handler(UploadError)
    async def _upload_error(_request, exc: UploadError):
        return _error(exc.status, exc.code, exc.message, exc.hint, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        return _error(422, "invalid_request", problems or "invalid request", "see /docs for the parameters")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request, exc: StarletteHTTPException):
        codes = {404: "not_found", 405: "method_not_allowed"}
        return _error(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail), None,
                      getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_request, exc: Exception):
        log.error("request failed", error=repr(exc), exc_info=exc)
        return _error(500, "internal_error", "the service failed unexpectedly", "the service's log has the traceback")

    def owner(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
        key_id = keys.verify(creds.credentials) if creds is not None else None
        if key_id is None:
            raise UploadError(401, "unauthorized", "a valid API key is required",
                              "send Authorization: Bearer KEY (an operator creates keys with `forensics serve keys create`)",
                              {"WWW-Authenticate": "Bearer"})
        return key_id

    Owner = Annotated[str, Depends(owner)]

    def view(job: dict[str, Any], with_result: bool = True) -> Analysis:
        return analysis_view(job, config.retention_s, with_result=with_result)

    def workers_alive() -> list[dict[str, Any]]:
        return [w for w in store.live_workers(max(3.0, config.lease_s)) if w["state"] == "ready"]

    # ------------------------------------------------------------------ page, health
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> Response:
        nonce = secrets.token_urlsafe(16)
        return HTMLResponse(page.render(nonce), headers=page.headers(nonce))

    @app.get("/healthz", response_model=Health, tags=["health"])
    def healthz() -> Health:
        """The process answers (liveness)."""
        return Health(status="ok")

    @app.get("/readyz", response_model=Readiness, tags=["health"], responses={503: {"model": Readiness}})
    def readyz():
        """Ready when the job store answers and a worker has its models loaded."""
        try:
            queued = store.queue_depth()
            ready = workers_alive()
        except Exception as exc:  # noqa: BLE001 - the database is down: not ready, not a 500
            body = Readiness(status="not_ready", reason=f"job store unreachable: {type(exc).__name__}", workers_ready=0,
                             models_loaded=[], queued=0, queue_size=config.queue_size, database=_backend(config))
            return JSONResponse(body.model_dump(), status_code=503)
        models = sorted({m for w in ready for m in json.loads(w["models"])})
        body = Readiness(status="ready" if ready else "not_ready", reason=None if ready else "no worker has its models loaded yet",
                         workers_ready=len(ready), models_loaded=models, queued=queued, queue_size=config.queue_size,
                         database=_backend(config))
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    # ------------------------------------------------------------------ detectors
    @app.get("/v1/detectors", response_model=DetectorList, tags=["detectors"], responses=_ERRORS)
    def detectors(_owner: Owner) -> DetectorList:
        """Every registered detector's card; which ones this service runs and has loaded; their weights."""
        loaded = {m for w in workers_alive() for m in json.loads(w["models"])}
        return DetectorList(detectors=catalog.describe(loaded))

    # ------------------------------------------------------------------ analyses
    @app.post("/v1/analyses", status_code=202, response_model=Analysis, tags=["analyses"], openapi_extra={"requestBody": SUBMISSION_BODY},
              responses={**_ERRORS, 400: {"model": ErrorResponse, "description": "malformed body"},
                         403: {"model": ErrorResponse, "description": "path not allowed"},
                         413: {"model": ErrorResponse, "description": "upload over the size cap"},
                         415: {"model": ErrorResponse, "description": "not multipart/form-data"},
                         429: {"model": ErrorResponse, "description": "the queue is full (see Retry-After)"},
                         507: {"model": ErrorResponse, "description": "the spool is full"}})
    async def submit(request: Request, key_id: Owner,
                     idempotency_key: Annotated[str | None, Header(description="a retry with the same key returns the same job")] = None):
        """Queue an analysis of an uploaded file: 202, the job, and its URL in `Location`."""
        if idempotency_key is not None and not _IDEMPOTENCY_RE.match(idempotency_key):
            raise UploadError(422, "invalid_request", "Idempotency-Key must be 1-255 printable ASCII characters")
        if idempotency_key is not None:
            old = await run_in_threadpool(store.find_idempotent, key_id, idempotency_key)
            if old is not None:
                return _accepted(view(old), replayed=True)
        alive = len(await run_in_threadpool(workers_alive))
        depth = await run_in_threadpool(store.queue_depth)
        if depth >= config.queue_size:
            retry = await run_in_threadpool(store.retry_after, depth, alive)
            raise _queue_full(depth, retry)
        sub = await read_submission(request, spool, config.upload_cap)
        try:
            models = resolve_models(sub.fields.get("models", []), served)
            options = resolve_options(sub.one("options"), models, served)
            combine = resolve_combine(sub.one("combine"), models)
            callback = resolve_callback(sub.one("callback_url"), config.webhook_hosts)
            path = sub.one("path")
            if (sub.writer is None) == (path is None):
                raise UploadError(422, "invalid_request", "send either a file part named 'file' or a 'path' field",
                                  "e.g. curl -F file=@clip.mp4 ...")
            if path is not None:
                source, size = resolve_path(path, config.allow_roots)
                spool_name, name = None, source
            else:
                sub.writer.commit()
                source, size, spool_name, name = None, sub.writer.size, sub.writer.name, display_name(sub.file_name)
            job, created = await run_in_threadpool(lambda: store.submit(
                owner=key_id, models=models, options=options, combine=combine, media_name=name, media_bytes=size,
                spool_name=spool_name, source_path=source, idempotency_key=idempotency_key, callback_url=callback,
                queue_size=config.queue_size, workers_alive=alive))
        except QueueFull as exc:
            sub.discard()
            spool.remove(sub.writer.name if sub.writer else None)
            raise _queue_full(exc.depth, exc.retry_after) from None
        except BaseException:
            sub.discard()
            spool.remove(sub.writer.name if sub.writer else None)
            raise
        if not created:
            spool.remove(spool_name)
        log.info("job accepted", job=job["id"], models=models, bytes=size, created=created)
        return _accepted(view(job), replayed=not created)

    @app.get("/v1/analyses", response_model=AnalysisList, tags=["analyses"], responses=_ERRORS)
    def list_analyses(key_id: Owner, limit: Annotated[int, Query(ge=1, le=100)] = 20,
                      offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
                      status: Annotated[Literal[STATUSES] | None, Query(description="only jobs in this state")] = None) -> AnalysisList:
        """This key's jobs, newest first, a page at a time."""
        rows, total = store.list(key_id, limit=limit, offset=offset, status=status)
        nxt = offset + len(rows) if offset + len(rows) < total else None
        return AnalysisList(items=[view(r, with_result=False) for r in rows], total=total, limit=limit, offset=offset, next_offset=nxt)

    @app.get("/v1/analyses/{job_id}", response_model=Analysis, tags=["analyses"], responses=_ERRORS)
    def get_analysis(job_id: JOB_ID, key_id: Owner) -> Analysis:
        """The job's status and progress; when finished, the CLI's result document."""
        return view(_own(job_id, key_id))

    @app.get("/v1/analyses/{job_id}/report", response_class=HTMLResponse, tags=["analyses"],
             responses=_HTML_ROUTE_ERRORS)
    def get_report(job_id: JOB_ID, key_id: Owner) -> Response:
        """The HTML evidence report of a finished job (self-contained: no external assets)."""
        from .reports import render

        job = _own(job_id, key_id)
        if not job.get("result"):
            raise UploadError(409, "not_finished", f"the job is {job['status']}; its report exists once it has finished",
                              "poll GET /v1/analyses/{id} until its status is succeeded or failed")
        return HTMLResponse(render(job, spool), headers=page.report_headers())

    @app.post("/v1/analyses/{job_id}/cancel", response_model=Analysis, tags=["analyses"], responses=_ERRORS)
    def cancel_analysis(job_id: JOB_ID, key_id: Owner) -> Analysis:
        """Cancel a queued or running job (its upload is deleted); a finished job is returned unchanged."""
        job = store.cancel(job_id, key_id)
        if job is None:
            raise _not_found()
        if job["status"] == "cancelled":
            spool.remove(job["spool_name"])
        return view(job)

    @app.delete("/v1/analyses/{job_id}", status_code=204, tags=["analyses"], responses=_ERRORS)
    def delete_analysis(job_id: JOB_ID, key_id: Owner) -> Response:
        """Cancel the job if it has not finished, and delete it, its upload and its report."""
        job = store.delete(job_id, key_id)
        if job is None:
            raise _not_found()
        spool.remove(job["spool_name"], job["report_name"])
        return Response(status_code=204)

    def _own(job_id: str, key_id: str) -> dict[str, Any]:
        job = store.get(job_id, owner=key_id)
        if job is None:
            raise _not_found()
        return job

    return app


def _backend(config: ServiceConfig) -> str:
    """The job store's kind (sqlite, postgresql): never its address or credentials."""
    return describe_url(config.database_url).split("://")[0].split("+")[0]


def _not_found() -> UploadError:
    return UploadError(404, "not_found", "no such analysis", "list yours with GET /v1/analyses")


def _queue_full(depth: int, retry_after: int) -> UploadError:
    return UploadError(429, "queue_full", f"the queue is full ({depth} jobs waiting)", f"retry in {retry_after} s",
                       {"Retry-After": str(retry_after)})


def _accepted(job: Analysis, replayed: bool) -> JSONResponse:
    headers = {"Location": job.links.self}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(job.model_dump(mode="json"), status_code=202, headers=headers)

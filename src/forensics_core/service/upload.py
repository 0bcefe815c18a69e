"""Read a ``multipart/form-data`` submission as it streams in, the file part straight into the spool.

Starlette's ``request.form()`` would buffer the file in a temporary file under
``$TMPDIR`` and only then let us look at it; here the body is parsed chunk by chunk
(python-multipart's streaming parser), so:

* an upload whose ``Content-Length`` is over the cap is refused (413) before one
  byte of the body is read;
* one without a length (chunked) is refused as soon as it crosses the cap, and what
  was written of it is deleted;
* small fields are held in memory under a per-field cap; the file part goes to a
  ``.part`` file in the spool and nowhere else.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import (
    MultipartParser,
    MultipartState,
    parse_options_header,
)
from starlette.requests import ClientDisconnect, Request

from .spool import Spool, SpoolLimit, SpoolWriter

FIELDS = ("file", "models", "options", "combine", "callback_url", "path")
MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 32
#: room for the small fields and the multipart framing around the file
OVERHEAD = 1024 * 1024


class UploadError(Exception):
    """A submission that cannot be accepted: an HTTP status, a stable code and a hint."""

    def __init__(self, status: int, code: str, message: str, hint: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.hint, self.headers = status, code, message, hint, headers or {}


def too_large(cap: int) -> UploadError:
    return UploadError(413, "upload_too_large", f"the upload is larger than this service's limit of {cap} bytes",
                       "send a smaller file; the operator sets the cap with --max-upload-mb (and FORENSICS_MAX_FILE_MB)")


@dataclass
class Submission:
    fields: dict[str, list[str]] = field(default_factory=dict)
    file_name: str | None = None
    writer: SpoolWriter | None = None

    def one(self, name: str) -> str | None:
        values = self.fields.get(name, [])
        if len(values) > 1:
            raise UploadError(422, "invalid_request", f"field {name!r} was given {len(values)} times", "send it once")
        return values[0] if values else None

    def discard(self) -> None:
        if self.writer is not None:
            self.writer.abort()


class _Parts:
    """The parser's callbacks: where the current part's bytes go."""

    def __init__(self, sub: Submission, spool: Spool, cap: int):
        self.sub, self.spool, self.cap = sub, spool, cap
        self.headers: dict[str, bytes] = {}
        self._hname = self._hvalue = b""
        self.name: str | None = None
        self.buffer: bytearray | None = None
        self.count = 0

    def callbacks(self) -> dict:
        return {"on_part_begin": self.begin, "on_header_field": self.hfield, "on_header_value": self.hvalue,
                "on_header_end": self.hend, "on_headers_finished": self.headers_done, "on_part_data": self.data,
                "on_part_end": self.end}

    def begin(self) -> None:
        self.count += 1
        if self.count > MAX_PARTS:
            raise UploadError(400, "invalid_request", f"more than {MAX_PARTS} form parts")
        self.headers, self.name, self.buffer = {}, None, None

    def hfield(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]

    def hvalue(self, data: bytes, start: int, end: int) -> None:
        self._hvalue += data[start:end]

    def hend(self) -> None:
        self.headers[self._hname.decode("latin-1").lower()] = self._hvalue
        self._hname = self._hvalue = b""

    def headers_done(self) -> None:
        kind, params = parse_options_header(self.headers.get("content-disposition", b""))
        if kind != b"form-data" or b"name" not in params:
            raise UploadError(400, "invalid_request", "a form part has no Content-Disposition: form-data; name=...")
        name = params[b"name"].decode("utf-8", "replace")
        if name not in FIELDS:
            raise UploadError(422, "invalid_request", f"unknown form field {name!r}", f"the fields are: {', '.join(FIELDS)}")
        self.name = name
        if name == "file":
            if self.sub.writer is not None:
                raise UploadError(422, "invalid_request", "more than one file part", "send one file per analysis")
            self.sub.file_name = params.get(b"filename", b"").decode("utf-8", "replace") or None
            self.sub.writer = self.spool.writer(self.sub.file_name, self.cap)
        else:
            self.buffer = bytearray()

    def data(self, data: bytes, start: int, end: int) -> None:
        if self.name == "file":
            self.sub.writer.write(data[start:end])
        elif self.buffer is not None:
            self.buffer += data[start:end]
            if len(self.buffer) > MAX_FIELD_BYTES:
                raise UploadError(413, "field_too_large", f"form field {self.name!r} is over {MAX_FIELD_BYTES} bytes")

    def end(self) -> None:
        if self.name and self.name != "file" and self.buffer is not None:
            try:
                text = self.buffer.decode("utf-8")
            except UnicodeDecodeError:
                raise UploadError(422, "invalid_request", f"form field {self.name!r} is not UTF-8 text") from None
            self.sub.fields.setdefault(self.name, []).append(text)


async def read_submission(request: Request, spool: Spool, cap: int) -> Submission:
    """Parse the request body; on any error every byte written to the spool is deleted again."""
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data":
        raise UploadError(415, "unsupported_media_type", "the body must be multipart/form-data",
                          "send the file as a form part named 'file', e.g. curl -F file=@clip.mp4")
    boundary = params.get(b"boundary")
    if not boundary or len(boundary) > 200:
        raise UploadError(400, "invalid_request", "multipart/form-data without a usable boundary")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise UploadError(400, "invalid_request", "Content-Length is not a number")
        if int(declared) > cap + OVERHEAD:
            raise too_large(cap)
    sub = Submission()
    parts = _Parts(sub, spool, cap)
    try:
        parser = MultipartParser(boundary, parts.callbacks())
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > cap + OVERHEAD:  # a chunked body, or one longer than it declared
                raise too_large(cap)
            if chunk:
                parser.write(chunk)
        parser.finalize()
        if parser.state not in (MultipartState.END, MultipartState.BOUNDARY_PADDING) and parts.count:
            raise UploadError(400, "invalid_request", "the multipart body ended before its closing boundary",
                              "the upload was cut off; send it again")
    except SpoolLimit as exc:
        sub.discard()
        if exc.kind == "too_large":
            raise too_large(cap) from None
        raise UploadError(507, "spool_full", str(exc), "retry later, when running jobs have finished",
                          {"Retry-After": "60"}) from None
    except FormParserError as exc:
        sub.discard()
        raise UploadError(400, "invalid_request", f"malformed multipart body: {exc}") from None
    except ClientDisconnect:
        sub.discard()
        raise UploadError(400, "client_disconnected", "the client went away before the upload was complete") from None
    except BaseException:
        sub.discard()
        raise
    return sub

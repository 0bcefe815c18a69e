"""Scan folders and file lists with detectors into a resumable JSONL file.

Why it is built this way:

* **One JSON line per file, written whole.** Each line is the file's
  :class:`~forensics_core.ensemble.EnsembleReport` plus its ``file_key``, written
  with one ``write`` and a ``flush``, so an interrupt leaves complete lines only.
  A crash (kill -9, power loss) can still leave a partial last line; the next run
  cuts it off before appending.
* **Resumable by content key.** A file is skipped when a line with the same
  ``file_key`` (path + size + mtime, or path + sha256), the same detectors and the
  same combine method is already in the output. Lines for the inputs that no
  longer match (the file changed, other detectors) are dropped, so the output keeps
  one line per file. Options are not part of the key: use ``resume=False`` after
  changing them.
* **Decoding overlaps inference.** ``workers`` threads analyse files at once
  (detectors serialise their own model calls); lines are still written in input
  order, so two runs give the same file.
* **Ray for many machines, not home-made machinery.** ``backend="ray"`` runs the
  same per-file function in an ``ActorPool`` of actors that each load the models
  once; the driver alone writes the output.
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import os
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ..detector import Detector, parse_options
from ..errors import InvalidOptionsError
from ..logs import get_logger
from .worker import (
    ModelSpec,
    _card,
    _card_id,
    _Job,
    _normalise_options,
    _process,
    detector_class,
    file_key,
    load_detectors,
)

__all__ = ["ScanSummary", "discover", "file_key", "line_status", "read_lines", "scan", "load_detectors", "detector_class"]

log = get_logger("forensics.scan")

VIDEO_EXTENSIONS = frozenset("mp4 mov mkv avi webm m4v mpg mpeg wmv flv ts".split())
AUDIO_EXTENSIONS = frozenset("wav mp3 flac m4a aac ogg opus wma".split())
#: still images: picked up in folders when one of the scan's detectors takes images (its card lists "image")
IMAGE_EXTENSIONS = frozenset("jpg jpeg png webp".split())
LIST_EXTENSIONS = frozenset({".txt", ".lst"})


class ScanSummary(BaseModel):
    """What a scan did. ``ok``/``abstained``/``error`` count every input's line, resumed ones included."""

    total: int = Field(description="input files discovered")
    analyzed: int = 0
    skipped_resumed: int = 0
    ok: int = 0
    abstained: int = 0
    error: int = 0
    error_codes: dict[str, int] = Field(default_factory=dict)
    interrupted: bool = False
    seconds: float = 0.0
    output: str
    models: list[str] = Field(default_factory=list)
    backend: str = "local"


# --------------------------------------------------------------------------- inputs
def _media_files(folder: Path, recursive: bool, exts: frozenset[str]) -> Iterator[Path]:
    """Media files by extension; hidden names (macOS ``._x.mp4`` forks) would only be error rows."""
    for p in folder.rglob("*") if recursive else folder.iterdir():
        if p.suffix.lower().lstrip(".") in exts and not p.name.startswith(".") and p.is_file():
            yield p


def discover(inputs: Iterable[str | os.PathLike], *, recursive: bool = True, include_audio: bool = False,
             include_images: bool = False) -> list[Path]:
    """Expand folders and ``.txt``/``.lst`` path lists into a sorted, de-duplicated list of resolved paths.

    Explicit file arguments (and list entries) are always kept, whatever their
    extension or even if missing, so that a mistake shows up as an error row
    instead of silently vanishing. Entries of a list are not themselves lists.
    """
    exts = VIDEO_EXTENSIONS | (AUDIO_EXTENSIONS if include_audio else frozenset()) | (IMAGE_EXTENSIONS if include_images else frozenset())
    found: dict[Path, None] = {}

    def add(p: Path, *, from_list: bool) -> None:
        p = p.expanduser()
        if p.is_dir():
            found.update(dict.fromkeys(q.resolve() for q in _media_files(p, recursive, exts)))
        elif not from_list and p.suffix.lower() in LIST_EXTENSIONS and p.is_file():
            for raw in p.read_text(encoding="utf-8-sig").splitlines():
                entry = raw.strip()
                if entry and not entry.startswith("#"):
                    q = Path(entry).expanduser()
                    add(q if q.is_absolute() else p.parent / q, from_list=True)
        else:
            found[p.resolve()] = None

    for item in inputs:
        add(Path(item), from_list=False)
    return sorted(found)


def line_status(line: dict[str, Any]) -> str:
    """A file's status: ``error`` if any detector errored, else ``ok`` if the combined verdict scored."""
    if any(r.get("status") == "error" for r in line.get("results", [])):
        return "error"
    return "ok" if line.get("combined", {}).get("status") == "ok" else "abstained"


def _brief(line: dict[str, Any]) -> tuple[str, frozenset[str]]:
    """What the summary needs of a line (kept instead of the line: outputs can be large)."""
    return line_status(line), frozenset(r["error"]["code"] for r in line.get("results", []) if r.get("error"))


# --------------------------------------------------------------------------- output
def _prepare_output(out: Path, resume: bool, paths: list[str], current: Callable[[str, dict], bool]) -> dict[str, tuple]:
    """Repair/compact the output; return ``{path: _brief(line)}`` for the lines a resumed run reuses.

    Lines for inputs that are not ``current`` (or repeat a path) are dropped so that the file
    keeps one line per input; lines for other files stay. Streams: outputs can be large.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    if not resume or not out.exists():
        out.write_bytes(b"")
        return {}
    wanted, kept, drop, end = set(paths), {}, set(), 0
    with out.open("rb") as fh:
        for i, raw in enumerate(fh):
            if not raw.endswith(b"\n"):
                log.warning("cutting off a partial last line (interrupted run?)", output=str(out), bytes=len(raw))
                break
            end += len(raw)
            try:
                line = json.loads(raw)
                path = line["file_key"]["path"]
            except (ValueError, KeyError, TypeError):
                log.warning("dropping an unreadable line", output=str(out), line=i + 1)
                drop.add(i)
                continue
            if path in wanted:
                if path in kept or not current(path, line):
                    drop.add(i)  # a duplicate, or stale (file changed, other detectors): redone
                    continue
                kept[path] = _brief(line)
    if drop:
        tmp = out.with_name(out.name + ".tmp")
        with out.open("rb") as src, tmp.open("wb") as dst:
            dst.writelines(raw for i, raw in enumerate(src) if i not in drop and raw.endswith(b"\n"))
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, out)
    elif end < out.stat().st_size:
        os.truncate(out, end)
    return kept


class _Writer:
    """Append lines, each as one write + flush; fsync at the end."""

    def __init__(self, path: Path, progress: bool | None, total: int):
        from tqdm.auto import tqdm

        show = sys.stderr.isatty() if progress is None else progress
        self.fh = path.open("ab")
        self.bar = tqdm(total=total, unit="file", file=sys.stderr, disable=not show, dynamic_ncols=True)
        self.count = 0

    def write(self, line: dict[str, Any]) -> None:
        self.fh.write((json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8"))
        self.fh.flush()
        self.count += 1
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
        os.fsync(self.fh.fileno())
        self.fh.close()


# --------------------------------------------------------------------------- scan
def scan(inputs: Iterable[str | os.PathLike], models: Sequence[ModelSpec], output: str | os.PathLike, *,
         load_kwargs: dict[str, Any] | None = None, options: dict[str, dict[str, Any]] | None = None,
         resume: bool = True, key: str = "stat", backend: str = "local", ray_address: str | None = None,
         progress: bool | None = None, workers: int = 2, method: str = "mean", recursive: bool = True,
         include_audio: bool = False,
         model_load_kwargs: dict[str, dict[str, Any]] | None = None,
         ray_actor_options: dict[str, Any] | None = None) -> ScanSummary:
    """Analyse every discovered file with every model into ``output`` (JSONL); see the module docstring.

    ``models``: detector ids/aliases, ``"module:Class"`` targets, Detector classes, or (local backend
    only) Detector instances. ``options``: ``{detector id: {option: value}}``.
    ``model_load_kwargs``: per-detector overrides of ``load_kwargs`` (e.g. each one's weights).
    """
    started = time.perf_counter()
    if key not in ("stat", "sha256"):
        raise InvalidOptionsError(f"unknown key mode {key!r}", hint="use 'stat' or 'sha256'")
    if backend not in ("local", "ray"):
        raise InvalidOptionsError(f"unknown backend {backend!r}", hint="use 'local' or 'ray'")
    if not models:
        raise InvalidOptionsError("no models given")
    paths = [str(p) for p in discover(inputs, recursive=recursive, include_audio=include_audio,
                                      include_images=any("image" in _card(m).modalities for m in models))]
    out = Path(output).expanduser().resolve()
    if str(out) in paths:
        raise InvalidOptionsError(f"the output {out} is also an input")
    ids = [_card_id(m) for m in models]
    if len(set(ids)) != len(ids):
        raise InvalidOptionsError(f"a detector is listed twice: {ids}")
    opts = _normalise_options(options, ids)
    for spec, cid in zip(models, ids):  # a bad option fails now, before the output is touched
        parse_options((type(spec) if isinstance(spec, Detector) else detector_class(spec)).Options, cid, opts.get(cid, {}))
    if backend == "ray":
        from .ray import ray_specs, run_ray
    specs = ray_specs(models) if backend == "ray" else []
    job = _Job(key, opts, method, dict(load_kwargs or {}), dict(model_load_kwargs or {}))
    workers = max(1, workers)
    keys: dict[str, dict] = {}  # taken here only for files that have a line; the others' in the workers

    def current(path: str, line: dict) -> bool:
        keys.setdefault(path, file_key(path, key))
        return (line.get("file_key") == keys[path] and line.get("combined", {}).get("method") == method
                and [r.get("detector_id") for r in line.get("results", [])] == ids)

    kept = _prepare_output(out, resume, paths, current)
    todo = [(p, keys.get(p)) for p in paths if p not in kept]
    statuses = Counter(status for status, _ in kept.values())
    codes = Counter(c for _, cs in kept.values() for c in cs)
    summary = ScanSummary(total=len(paths), skipped_resumed=len(kept), output=str(out), models=ids, backend=backend)
    log.info("scan starting", files=len(paths), resumed=len(kept), todo=len(todo), models=ids, backend=backend)
    writer = _Writer(out, progress, len(todo)) if todo else None

    def emit(line: dict[str, Any]) -> None:
        writer.write(line)
        status, cs = _brief(line)
        statuses[status] += 1
        codes.update(cs)

    try:
        if todo and backend == "local":
            _run_local(models, todo, job, workers, emit)
        elif todo:
            run_ray(specs, todo, job, workers, emit, ray_address, ray_actor_options)
    except KeyboardInterrupt:
        summary.interrupted = True
        log.warning("scan interrupted; rerun the same command to resume", output=str(out))
    finally:
        if writer is not None:
            writer.close()
    summary.analyzed = writer.count if writer else 0
    summary.ok, summary.abstained, summary.error = statuses["ok"], statuses["abstained"], statuses["error"]
    summary.error_codes = dict(sorted(codes.items()))
    summary.seconds = round(time.perf_counter() - started, 3)
    log.info("scan finished", **summary.model_dump())
    return summary


def _run_local(models, todo, job: _Job, workers: int, emit) -> None:
    """Thread pool; a bounded window of futures is consumed in input order."""
    detectors = load_detectors(models, job.load_kwargs, job.model_load_kwargs)
    pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="forensics-scan")
    window: deque[cf.Future] = deque()
    try:
        for path, k in todo:
            window.append(pool.submit(_process, detectors, path, k, job))
            while len(window) >= 2 * workers:
                emit(window.popleft().result())
        while window:
            emit(window.popleft().result())
    except KeyboardInterrupt:
        while window and window[0].done() and not window[0].cancelled():  # keep what is finished, in order
            emit(window.popleft().result())
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # running files finish; the process waits for them



def read_lines(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The complete lines of a scan output (a partial last line is ignored)."""
    with Path(path).open("rb") as fh:
        return [json.loads(raw) for raw in fh if raw.endswith(b"\n") and raw.strip()]

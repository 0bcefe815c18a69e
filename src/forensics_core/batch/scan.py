"""Scan folders and file lists with detectors into a resumable JSONL file.

Why it is built this way:

* **One JSON line per file, written whole.** Each line is the file's
  :class:`~forensics_core.ensemble.EnsembleReport` plus its ``file_key``, written
  with one ``write`` and a ``flush``, so an interrupt leaves complete lines only.
  A crash (kill -9, power loss) can still leave a partial last line; the next run
  cuts it off before appending.
* **Resumable by content key.** A file is skipped when a line with the same
  ``file_key`` (path + size + mtime, or path + sha256) and the same ``scan_key``
  (:func:`run_key`: each detector's id, version, options with their defaults filled
  in, precision and weights identity, and the combine method) is already in the
  output. Lines for the inputs that no longer match (the file changed, other
  detectors, other options or weights) are dropped and redone, so the output keeps
  one line per file.
* **One output, one writer.** The scan holds an exclusive lock on its output
  (:mod:`.lock`) from before it reads the output until it ends; a second scan on the
  same output refuses at once (exit code 5).
* **Any name.** Paths are handled as the bytes they are: a name that is not UTF-8
  is written readably with ``\\xNN`` escapes plus ``path_bytes``/``media_path_bytes``
  (base64), and resumes find it again. A symlink loop, a FIFO, an unreadable folder or
  list entry becomes that file's error line, never the end of the scan.
* **Decoding overlaps inference.** ``workers`` threads analyse files at once
  (detectors serialise their own model calls); lines are written in input order, so
  two uninterrupted runs give the same file.
* **Ctrl-C stops now.** No new file is started, every finished line is written (in
  input order among themselves), and the scan returns ``interrupted``; the files in
  flight are redone by the next run. The CLI then exits 130 at once instead of waiting
  for them.
* **Ray for many machines, not home-made machinery.** ``backend="ray"`` runs the
  same per-file function in an ``ActorPool`` of actors that each load the models
  once; the driver alone writes the output.
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import os
import stat
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ..detector import Detector, parse_options
from ..errors import InvalidOptionsError
from ..logs import get_logger
from ..media.paths import canonical_path, display_path, path_from_fields
from ..results import clean_strings
from .lock import OutputLock
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

__all__ = ["ScanSummary", "discover", "file_key", "line_status", "read_lines", "run_key", "scan", "load_detectors",
           "detector_class"]

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
def _is_dir(p: str) -> bool:
    """``os.path.isdir`` that never raises (loops, permissions, odd names)."""
    try:
        return stat.S_ISDIR(os.stat(p).st_mode)
    except (OSError, ValueError):
        return False


def _is_regular(p: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(p).st_mode)
    except (OSError, ValueError):
        return False


def _media_files(folder: str, recursive: bool, exts: frozenset[str]) -> Iterator[str]:
    """Regular media files by extension (``os.walk``: no symlinked folders followed, unreadable ones skipped).

    Hidden names (macOS ``._x.mp4`` forks) would only be error rows; FIFOs and devices are
    never picked up from a folder (name them explicitly to get their error line).
    """
    for dirpath, dirnames, filenames in os.walk(folder, onerror=lambda exc: log.warning(
            "cannot list a folder", folder=display_path(exc.filename or folder), error=exc.strerror)):
        if not recursive:
            dirnames.clear()
        dirnames.sort()
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.splitext(name)[1].lower().lstrip(".") in exts and not name.startswith(".") and _is_regular(path):
                yield path


def discover(inputs: Iterable[str | os.PathLike], *, recursive: bool = True, include_audio: bool = False,
             include_images: bool = False) -> list[Path]:
    """Expand folders and ``.txt``/``.lst`` path lists into a sorted, de-duplicated list of resolved paths.

    Explicit file arguments (and list entries) are always kept, whatever their
    extension or even if missing (or a symlink loop, a FIFO ...), so that a mistake
    shows up as an error row instead of silently vanishing. Entries of a list are not
    themselves lists. Any name works: lists are read with ``surrogateescape``.
    """
    exts = VIDEO_EXTENSIONS | (AUDIO_EXTENSIONS if include_audio else frozenset()) | (IMAGE_EXTENSIONS if include_images else frozenset())
    found: dict[str, None] = {}

    def add(p: str, *, from_list: bool) -> None:
        p = os.path.expanduser(p)
        if _is_dir(p):
            found.update(dict.fromkeys(canonical_path(q) for q in _media_files(p, recursive, exts)))
        elif not from_list and os.path.splitext(p)[1].lower() in LIST_EXTENSIONS and _is_regular(p):
            with open(p, encoding="utf-8-sig", errors="surrogateescape") as fh:
                for raw in fh.read().splitlines():
                    entry = raw.strip()
                    if entry and not entry.startswith("#"):
                        q = os.path.expanduser(entry)
                        add(q if os.path.isabs(q) else os.path.join(os.path.dirname(p), q), from_list=True)
        else:
            found[canonical_path(p)] = None

    for item in inputs:
        add(os.fsdecode(os.fspath(item)), from_list=False)
    return [Path(p) for p in sorted(found)]


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
                path = path_from_fields(line["file_key"]["path"], line["file_key"].get("path_bytes"))
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
        # clean_strings: every string valid UTF-8 (rows already are; this guards detectors' extra fields)
        self.fh.write((json.dumps(clean_strings(line), ensure_ascii=False) + "\n").encode("utf-8"))
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
    out = Path(canonical_path(output))
    if str(out) in paths:
        raise InvalidOptionsError(f"the output {display_path(out)} is also an input")
    ids = [_card_id(m) for m in models]
    if len(set(ids)) != len(ids):
        raise InvalidOptionsError(f"a detector is listed twice: {ids}")
    opts = _normalise_options(options, ids)
    for spec, cid in zip(models, ids):  # a bad option fails now, before the output is touched
        parse_options((type(spec) if isinstance(spec, Detector) else detector_class(spec)).Options, cid, opts.get(cid, {}))
    if backend == "ray":
        from .ray import ray_specs, run_ray
    specs = ray_specs(models) if backend == "ray" else []
    scan_key = run_key(models, ids, opts, load_kwargs or {}, model_load_kwargs or {}, method)
    job = _Job(key, opts, method, dict(load_kwargs or {}), dict(model_load_kwargs or {}), scan_key)
    workers = max(1, workers)
    keys: dict[str, dict] = {}  # taken here only for files that have a line; the others' in the workers

    def current(path: str, line: dict) -> bool:
        keys.setdefault(path, file_key(path, key))
        return line.get("file_key") == keys[path] and line.get("scan_key") == scan_key

    lock = _open_output(out)
    try:
        kept = _prepare_output(out, resume, paths, current)
        todo = [(p, keys.get(p)) for p in paths if p not in kept]
        statuses = Counter(status for status, _ in kept.values())
        codes = Counter(c for _, cs in kept.values() for c in cs)
        summary = ScanSummary(total=len(paths), skipped_resumed=len(kept), output=display_path(out), models=ids, backend=backend)
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
            log.warning("scan interrupted; rerun the same command to resume", output=display_path(out))
        finally:
            if writer is not None:
                writer.close()
    finally:
        lock.release()
    summary.analyzed = writer.count if writer else 0
    summary.ok, summary.abstained, summary.error = statuses["ok"], statuses["abstained"], statuses["error"]
    summary.error_codes = dict(sorted(codes.items()))
    summary.seconds = round(time.perf_counter() - started, 3)
    log.info("scan finished", **summary.model_dump())
    return summary


def run_key(models: Sequence[ModelSpec], ids: list[str], opts: dict[str, dict[str, Any]], load_kwargs: dict[str, Any],
            model_load_kwargs: dict[str, dict[str, Any]], method: str) -> dict[str, Any]:
    """What a line must have been made with, besides its file, to be resumed.

    Per detector: id, version, every option (defaults filled in, so ``-o n_extract=10``
    equals the default), precision, and the weights' identity (path, size, mtime: a
    rerun with other weights, or a re-downloaded file, redoes every file). Plus the
    combine method. Cheap: nothing is loaded and no weights are read.
    """
    detectors = []
    for spec, cid in zip(models, ids):
        cls = type(spec) if isinstance(spec, Detector) else detector_class(spec)
        kwargs = {**load_kwargs, **model_load_kwargs.get(cid, {})}
        weights = kwargs.get("weights")
        if isinstance(spec, Detector) and spec.loaded and spec._load_args:
            weights, kwargs["precision"] = spec._load_args[2], spec._load_args[1]
        detectors.append({
            "id": cid, "version": cls.card.version,
            "options": parse_options(cls.Options, cid, opts.get(cid, {})).model_dump(mode="json"),
            "precision": kwargs.get("precision", "fp32"),
            "weights": cls.weights_identity(weights),
        })
    return json.loads(json.dumps(clean_strings({"method": method, "detectors": detectors})))  # as it reads back


def _open_output(out: Path) -> OutputLock:
    """Lock the output (refusing if another scan holds it); a destination that cannot be a JSONL file fails now."""
    try:
        st = os.stat(out)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise InvalidOptionsError(f"cannot use the output {display_path(out)}: {exc.strerror or exc}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise InvalidOptionsError(f"the output {display_path(out)} is not a regular file",
                                  hint="scan writes a resumable JSON-lines file: pass --output FILE.jsonl")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return OutputLock(out).acquire()
    except OSError as exc:
        raise InvalidOptionsError(f"cannot write the output {display_path(out)}: {exc.strerror or exc}",
                                  hint="pass --output in a folder you can write to") from None


def _run_local(models, todo, job: _Job, workers: int, emit) -> None:
    """Thread pool; a bounded window of futures is consumed in input order.

    On Ctrl-C: ``cancel`` stops the workers from starting another file (and pending ones
    are cancelled), every finished line is written, and the interrupt goes on up at once;
    the files in flight finish in the background and are not written.
    """
    detectors = load_detectors(models, job.load_kwargs, job.model_load_kwargs)
    cancel = threading.Event()
    pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="forensics-scan")
    window: deque[cf.Future] = deque()
    try:
        for path, k in todo:
            window.append(pool.submit(_process, detectors, path, k, job, cancel))
            while len(window) >= 2 * workers:
                emit(window.popleft().result())
        while window:
            emit(window.popleft().result())
    except KeyboardInterrupt:
        cancel.set()
        for future in window:  # keep every finished line, in input order among themselves
            if future.done() and not future.cancelled() and future.exception() is None:
                emit(future.result())
        raise
    finally:
        cancel.set()
        pool.shutdown(wait=False, cancel_futures=True)


def read_lines(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The complete lines of a scan output (a partial last line is ignored)."""
    with Path(path).open("rb") as fh:
        return [json.loads(raw) for raw in fh if raw.endswith(b"\n") and raw.strip()]

"""From results to what a report shows: per file, per detector, per window.

Why this is separate from the template: everything that needs judgement (which windows
get a picture, where the pictures come from, whether the media is still the file that
was analysed, what a code means) is decided here, in Python, where it is tested; the
template only lays it out.
"""
from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..evidence_images import EvidenceCapture, EvidenceImage
from ..logs import get_logger
from . import svg, words
from .documents import FileDoc
from .thumbnails import Thumbnail, make_thumbnail, source_frames

log = get_logger("forensics.report")

#: windows per detector and file that get pictures (the highest scores when there are more)
MAX_WINDOW_IMAGES = 24
#: all pictures of one report together; files past it get none (and say so)
IMAGE_BUDGET_BYTES = 48 << 20


@dataclass
class WindowView:
    index: int
    anchor: str
    start: float
    end: float
    score: float | None
    prediction: str | None
    facts: list[tuple[str, str]]
    score_svg: Any = None
    weights_svg: Any = None
    thumbs: list[Thumbnail] = field(default_factory=list)


@dataclass
class DetectorView:
    id: str
    anchor: str
    status: str
    sentence: str
    row: dict[str, Any]
    error: dict[str, str] | None = None
    windows: list[WindowView] = field(default_factory=list)
    windows_note: str | None = None
    images_note: str | None = None
    segments: list[list[float]] = field(default_factory=list)
    provenance: list[tuple[str, str]] = field(default_factory=list)
    options: list[tuple[str, str]] = field(default_factory=list)
    tracks: list[list[tuple[str, str]]] = field(default_factory=list)


@dataclass
class FileView:
    index: int
    anchor: str
    name: str
    path: str
    verdict: str
    score: float | None
    sentence: str | None
    evidence: dict[str, Any] | None
    detectors: list[DetectorView]
    timeline: Any
    duration: float | None
    facts: list[tuple[str, str]]
    notes: list[str] = field(default_factory=list)
    problem: str | None = None


@dataclass
class Budget:
    """Bytes of pictures left for the rest of the report."""

    left: int = IMAGE_BUDGET_BYTES

    def take(self, thumbs: list[Thumbnail]) -> bool:
        need = sum(t.nbytes for t in thumbs)
        if need > self.left:
            return False
        self.left -= need
        return True


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _from_bytes(b64: Any) -> str | None:
    """A path kept losslessly as base64 bytes (``media_path_bytes``), as the OS's str form."""
    if not isinstance(b64, str):
        return None
    try:
        return os.fsdecode(base64.b64decode(b64, validate=True))
    except ValueError:
        return None


def media_state(doc: FileDoc, media: dict[str, Any] | None) -> tuple[Path | None, str | None, str | None]:
    """(usable path or None, sha256 or None, a note): is the file still there and still the analysed file?

    The path is the scan's ``file_key`` path or a detector row's (absolute, as analysed), else the
    document's own (which ``analyze`` keeps as typed, so relative to where it ran).
    """
    key = doc.file_key or {}
    exact = [_from_bytes(r.get("media_path_bytes")) for r in [doc.extra, *doc.results]]  # names that are not UTF-8
    candidates = exact + [key.get("path")] + [r.get("media_path") for r in doc.results] + [doc.media_path]
    absolute = [Path(c) for c in candidates if isinstance(c, str) and os.path.isabs(c)]
    path = next((p for p in absolute if p.is_file()), absolute[0] if absolute else Path(doc.media_path).expanduser())
    if not path.is_file():
        return None, key.get("sha256"), (f"The media file is not at {doc.media_path} (moved or deleted?): its images "
                                        "cannot be recomputed, and its sha256 is shown only if the results recorded it.")
    st = path.stat()
    changed = None
    if key.get("size") is not None and (key["size"] != st.st_size or key.get("mtime_ns") not in (None, st.st_mtime_ns)):
        changed = "its size or modification time differs from the analysed file's"
    elif (media or {}).get("size_bytes") not in (None, st.st_size):
        changed = "its size differs from the analysed file's"
    digest = _sha256(path)
    if key.get("sha256") and key["sha256"] != digest:
        changed = "its sha256 differs from the analysed file's"
    if changed:
        return None, key.get("sha256"), (f"The file at {doc.media_path} has changed since the analysis ({changed}): "
                                        "no images are recomputed from it.")
    return path, digest, None


def _window_facts(w: Mapping[str, Any]) -> list[tuple[str, str]]:
    first, last = w.get("start_frame"), w.get("end_frame")
    facts = [("frame", str(first))] if first == last else [("frames", f"{first} to {last}")]
    for key in ("track", "face_box", "logit", "mel_columns"):
        if w.get(key) is not None:
            facts.append((key.replace("_", " "), words.value_text(w[key])))
    return facts


def _region_weights(w: Mapping[str, Any]):
    rw = w.get("region_weights")
    if not isinstance(rw, dict) or not rw:
        return None
    means, detail = {}, {}
    for name, value in rw.items():
        values = value if isinstance(value, list) else [value]
        nums = [float(v) for v in values if isinstance(v, (int, float))]
        if nums:
            means[name], detail[name] = sum(nums) / len(nums), nums
    return svg.weight_bars(means, detail=detail) if means else None


def choose_windows(windows: list[dict[str, Any]], limit: int = MAX_WINDOW_IMAGES) -> list[dict[str, Any]]:
    """All windows, or the ``limit`` highest-scoring ones (ties: the earlier), in time order."""
    if len(windows) <= limit:
        return list(windows)
    best = sorted(windows, key=lambda w: (-float(w.get("score") or 0.0), int(w.get("index", 0))))[:limit]
    return sorted(best, key=lambda w: int(w.get("index", 0)))


def _images(det_id: str, row: dict[str, Any], chosen: list[dict[str, Any]], path: Path | None,
            capture: EvidenceCapture | None, detectors: dict[str, Any], budget: Budget,
            images: bool) -> tuple[dict[int, list[Thumbnail]], str | None]:
    """Thumbnails per window index: captured during the analysis, else recomputed by the detector."""
    if not images or not chosen:
        return {}, None if images else "Images were left out of this report."
    wanted = {int(w["index"]) for w in chosen}
    thumbs: dict[int, list[Thumbnail]] = {}
    got = capture.get(det_id, row.get("media_path", "")) if capture else {}
    for (index, _kind), thumb in got.items():
        if index in wanted:
            thumbs.setdefault(index, []).append(thumb)
    note = None
    missing = sorted(i for i in wanted if not any(t.kind == "input" for t in thumbs.get(i, [])))
    if missing and path is None:
        note = "No images: the media file is not available (see the file's notes)."
    elif missing:
        if det_id not in detectors:  # looked up once per report, unloaded: evidence needs no weights
            try:
                from .. import get_detector

                detectors[det_id] = get_detector(det_id)
            except Exception as exc:  # noqa: BLE001 - a report never stops for one detector
                log.info("detector for evidence not found", detector_id=det_id, error=repr(exc))
                detectors[det_id] = None
        det = detectors[det_id]
        if det is None:
            note = f"No images: {det_id} is not installed here."
        else:
            try:
                for image in det.evidence(path, row, windows=missing):
                    if image.window_index in wanted:
                        thumbs.setdefault(image.window_index, []).append(make_thumbnail(image))
            except Exception as exc:  # noqa: BLE001
                log.warning("evidence failed", detector_id=det_id, media_path=str(path), error=repr(exc))
                note = f"The images could not be recomputed: {getattr(exc, 'message', None) or exc}"
            if not thumbs and note is None:
                note = f"{det_id} offers no images of what it looked at."
    boxed = [(int(w["index"]), int(w.get("start_frame", 0)), w["face_box"]) for w in chosen
             if isinstance(w.get("face_box"), list) and len(w["face_box"]) >= 4
             and not any(t.kind == "frame" for t in thumbs.get(int(w["index"]), []))]
    if boxed and path is not None:
        try:
            for image in source_frames(path, boxed):
                thumbs.setdefault(image.window_index, []).append(make_thumbnail(image, max_width=320, max_height=240))
        except Exception as exc:  # noqa: BLE001
            note = (note + " " if note else "") + f"The face frames could not be read: {exc}"
    flat = [t for ts in thumbs.values() for t in ts]
    if flat and not budget.take(flat):
        return {}, "Images left out: this report's image budget is spent (make a report of this file alone to see them)."
    return thumbs, note


def _provenance(row: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [("detector version", str(row.get("detector_version", "unknown")))]
    for key, label in (("device", "device"), ("precision", "precision")):
        if row.get(key):
            rows.append((label, str(row[key])))
    if row.get("processing_time") is not None:
        rows.append(("processing time", f"{float(row['processing_time']):.2f} s"))
    weights = row.get("weights")
    if isinstance(weights, dict):
        for k, v in weights.items():
            rows.append((f"weights {k}", words.value_text(v)))
    elif weights:
        rows.append(("weights", str(weights)))
    if row.get("weights_sha256"):
        rows.append(("weights sha256", str(row["weights_sha256"])))
    if row.get("timings"):
        rows.append(("stage times", ", ".join(f"{k} {float(v):.2f} s" for k, v in row["timings"].items())))
    if row.get("schema_version"):
        rows.append(("result schema", str(row["schema_version"])))
    return rows


def _tracks(row: dict[str, Any]) -> list[list[tuple[str, str]]]:
    faces = row.get("faces")
    if not isinstance(faces, list):
        return []
    return [[(k, words.value_text(v)) for k, v in t.items() if not isinstance(v, (list, dict)) or k == "box"]
            for t in faces if isinstance(t, dict)]


def _lane(view: DetectorView, duration: float) -> svg.Lane:
    """A detector's lane; a score without windows is drawn across the whole file."""
    row = view.row
    threshold = float(row.get("threshold", 0.5))
    note = {"abstained": f"abstained: {words.abstain_words(row.get('abstain_reason'), row.get('abstain_code'))}",
            "error": f"error [{(view.error or {}).get('code', '')}]: {(view.error or {}).get('meaning', '')}"}.get(view.status, "")
    with_cards = {w.index for w in view.windows}
    marks = [svg.Mark(float(w.get("start_time", 0.0)), float(w.get("end_time", 0.0)), float(w.get("score", 0.0)),
                      f"window {w.get('index')}: {float(w.get('start_time', 0)):.2f}-{float(w.get('end_time', 0)):.2f} s, "
                      f"score {float(w.get('score', 0)):.3f} ({w.get('prediction', '')})"
                      + (f", track {w['track']}" if w.get("track") is not None else ""),
                      f"#{view.anchor}-w{w.get('index')}" if w.get("index") in with_cards else None)
             for w in row.get("windows") or [] if isinstance(w, dict)]
    if not marks and view.status == "ok" and duration > 0:
        marks = [svg.Mark(0.0, duration, float(row["score"]), f"whole-file score {float(row['score']):.3f} (no windows)")]
    segs = [tuple(float(v) for v in s[:3]) for s in view.segments if isinstance(s, list) and len(s) >= 3]
    return svg.Lane(view.id, view.status, threshold, marks, segs, note)


def detector_view(row: dict[str, Any], anchor: str, path: Path | None, capture: EvidenceCapture | None,
                  detectors: dict[str, Any], budget: Budget, images: bool, max_windows: int) -> DetectorView:
    det_id = str(row.get("detector_id", "?"))
    view = DetectorView(id=det_id, anchor=anchor, status=str(row.get("status")), sentence=words.verdict_sentence(row), row=row)
    if view.status == "error":
        view.error = words.error_words(row.get("error"))
    view.segments = [s for s in row.get("segments") or [] if isinstance(s, list)]
    view.provenance = _provenance(row)
    view.options = [(k, words.value_text(v)) for k, v in sorted((row.get("options") or {}).items())]
    view.tracks = _tracks(row)
    windows = [w for w in row.get("windows") or [] if isinstance(w, dict) and "index" in w]
    chosen = choose_windows(windows, max_windows)
    if len(chosen) < len(windows):
        view.windows_note = (f"Showing the {len(chosen)} highest-scoring of {len(windows)} windows; "
                             "the timeline shows them all, the results file lists them all.")
    thumbs, view.images_note = _images(det_id, row, chosen, path, capture, detectors, budget, images)
    threshold = float(row.get("threshold", 0.5))
    for w in chosen:
        score = float(w["score"]) if isinstance(w.get("score"), (int, float)) else None
        view.windows.append(WindowView(
            index=int(w["index"]), anchor=f"{anchor}-w{w['index']}", start=float(w.get("start_time", 0.0)),
            end=float(w.get("end_time", 0.0)), score=score, prediction=w.get("prediction"), facts=_window_facts(w),
            score_svg=svg.score_bar(score, threshold) if score is not None else None, weights_svg=_region_weights(w),
            thumbs=sorted(thumbs.get(int(w["index"]), []), key=lambda t: t.kind != "input")))
    return view


def _media(doc: FileDoc) -> dict[str, Any] | None:
    """The file's probe: the ensemble document's (the shared time axis), completed by a detector's."""
    found = [doc.extra["media"]] if isinstance(doc.extra.get("media"), dict) else []
    found += [r["media"] for r in doc.results if isinstance(r.get("media"), dict)]
    merged: dict[str, Any] = {}
    for media in reversed(found):  # the first found wins
        merged.update({k: v for k, v in media.items() if v is not None})
    return merged or None


def _probe(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        from ..media import probe

        return probe(path).to_dict()
    except Exception as exc:  # noqa: BLE001 - the facts are then just missing
        log.info("probe for report failed", path=str(path), error=repr(exc))
        return None


def file_view(doc: FileDoc, index: int, *, capture: EvidenceCapture | None = None, detectors: dict[str, Any] | None = None,
              budget: Budget | None = None, images: bool = True, max_windows: int = MAX_WINDOW_IMAGES) -> FileView:
    """Everything the report shows about one file."""
    anchor = f"f{index}"
    media = _media(doc)
    path, sha, note = media_state(doc, media) if not doc.problem or doc.results else (None, None, None)
    if media is None:
        media = _probe(path)
    notes = [note] if note else []
    budget = budget or Budget()
    detectors = {} if detectors is None else detectors
    views = [detector_view(r, f"{anchor}-d{j}", path, capture, detectors, budget, images, max_windows)
             for j, r in enumerate(doc.results)]
    ends = [float(w.get("end_time", 0.0)) for r in doc.results for w in r.get("windows") or [] if isinstance(w, dict)]
    duration = (media or {}).get("duration") or (max(ends) if ends else None)
    timeline = None
    if views and (duration or ends):
        timeline = svg.timeline([_lane(v, float(duration or 0.0)) for v in views], float(duration or 0.0),
                                element_id=f"{anchor}-timeline")
    combined = doc.combined
    if combined and combined.get("status") == "ok":
        verdict, score = str(combined["prediction"]), float(combined["score"])
    elif len(doc.results) == 1 and doc.results[0].get("status") == "ok":
        verdict, score = str(doc.results[0]["prediction"]), float(doc.results[0]["score"])
    else:
        statuses = {r.get("status") for r in doc.results}
        verdict, score = ("error" if "error" in statuses else "abstained" if doc.results else "no result"), None
    for w in sorted({w for r in doc.results for w in r.get("warnings") or []}):
        notes.append(f"Warning: {w}")
    return FileView(index=index, anchor=anchor, name=os.path.basename(doc.media_path) or doc.media_path, path=doc.media_path,
                    verdict=verdict, score=score, sentence=words.combined_sentence(combined),
                    evidence=words.evidence_level(combined), detectors=views, timeline=timeline,
                    duration=float(duration) if duration else None, facts=words.media_facts(media, sha),
                    notes=notes, problem=doc.problem)


def file_views(docs: list[FileDoc], *, capture: EvidenceCapture | None = None, detectors: Mapping[str, Any] | None = None,
               images: bool = True, max_windows: int = MAX_WINDOW_IMAGES, image_budget: int = IMAGE_BUDGET_BYTES,
               progress: Callable[[int, int], None] | None = None) -> list[FileView]:
    budget = Budget(image_budget)
    detectors = dict(detectors or {})  # detectors looked up by id are kept here for the next files
    out = []
    for i, doc in enumerate(docs):
        out.append(file_view(doc, i, capture=capture, detectors=detectors, budget=budget, images=images, max_windows=max_windows))
        if progress:
            progress(i + 1, len(docs))
    return out


def capture_thumbnail(image: EvidenceImage) -> Thumbnail:
    """The converter :func:`forensics_core.evidence_images.capturing` uses for reports: a thumbnail, at once."""
    if image.kind == "frame":
        return make_thumbnail(image, max_width=320, max_height=240)
    return make_thumbnail(image)

"""Plain words for what results say: verdicts, abstentions, error codes, media facts.

Why a module of its own: a report is read by people who do not know our codes; every
code that reaches a report is turned into a sentence here, in one place, and error
codes reuse the hints the CLI prints (:data:`forensics_core.errors.MEDIA_ERROR_CODES`).
"""
from __future__ import annotations

import json
from typing import Any

from ..errors import MEDIA_ERROR_CODES

#: error codes that are not media codes, in plain words (the media ones come from errors.py)
OTHER_ERRORS: dict[str, tuple[str, str]] = {
    "weights_error": ("The detector's weights are missing, damaged or do not fit the model.",
                      "Run `forensics pull ID`, or pass --weights with the right file."),
    "invalid_options": ("The options given to the detector are not valid.", "Run `forensics models` to see the valid options."),
    "unknown_detector": ("No installed detector has this name.", "Run `forensics models` to list the detectors."),
    "not_loaded": ("The detector was used before it was loaded.", "Load it first (load_model or .load())."),
    "plugin_load_failed": ("The detector's plugin could not be loaded.", "Run `forensics plugins` to see why."),
    "internal_error": ("The detector failed unexpectedly.", "Rerun with --log-level debug and report the log."),
    "not_run": ("This detector has no result for the file.", "Run the analysis with this detector."),
}

#: abstention reasons (codes or the host's phrases) in plain words
ABSTAIN_REASONS: dict[str, str] = {
    "no audio track": "the file has no audio track, and this detector needs the speech",
    "no_audio_track": "the file has no audio track, and this detector needs the speech",
    "no video stream": "the file has no video, and this detector needs pictures",
    "no_video_stream": "the file has no video, and this detector needs pictures",
    "no_face": "no face was found in the video",
    "no face": "no face was found in the video",
    "image": "the file is a still image, and this detector needs moving pictures with sound",
    "still_image": "the file is a still image, and this detector needs moving pictures with sound",
}

EVIDENCE_LEVELS = {
    "substantial": "Substantial evidence of manipulation",
    "uncertain": "Uncertain: the evidence is mixed or weak",
    "little": "Little evidence of manipulation",
}


def error_words(error: dict[str, Any] | None) -> dict[str, str]:
    """``{"code", "meaning", "message", "hint"}`` for an error row's ``error`` object."""
    error = error or {}
    code = str(error.get("code") or "error")
    meaning, hint = MEDIA_ERROR_CODES.get(code) or OTHER_ERRORS.get(code) or ("The analysis failed.", "")
    return {"code": code, "meaning": meaning, "message": str(error.get("message") or ""),
            "hint": str(error.get("hint") or hint)}


def abstain_words(reason: str | None, code: str | None = None) -> str:
    """Why a detector gave no score, as a phrase (from its reason code where there is one)."""
    reason = (reason or "").strip()
    return (ABSTAIN_REASONS.get(code or "") or ABSTAIN_REASONS.get(reason) or ABSTAIN_REASONS.get(reason.lower())
            or reason or "no reason given")


def verdict_sentence(row: dict[str, Any]) -> str:
    """One detector's result as a sentence."""
    who = row.get("detector_id", "The detector")
    status = row.get("status")
    if status == "ok":
        score, threshold = float(row["score"]), float(row.get("threshold", 0.5))
        side = "at or above" if score >= threshold else "below"
        text = (f"{who} calls it {row['prediction']}: its score {score:.3f} is {side} its threshold {threshold:g}"
                f" ({'likely manipulated' if score >= threshold else 'no manipulation found'}).")
        windows = row.get("windows") or []
        if windows:
            high = sum(1 for w in windows if float(w.get("score", 0)) >= threshold)
            text += f" {high} of {len(windows)} windows scored at or above the threshold."
        return text
    if status == "abstained":
        return f"{who} abstained: {abstain_words(row.get('abstain_reason'), row.get('abstain_code'))}. It gives no score for this file."
    e = error_words(row.get("error"))
    return f"{who} could not analyse the file: {e['meaning']}"


def combined_sentence(combined: dict[str, Any] | None) -> str | None:
    """The ensemble's verdict as a sentence (None for a single detector)."""
    if not combined:
        return None
    if combined.get("status") != "ok":
        return f"No combined verdict: {combined.get('reason') or 'no detector gave a score'}."
    used = combined.get("detectors_used") or []
    method = {"mean": "the mean", "max": "the highest", "weighted": "the weighted mean"}.get(combined.get("method"), combined.get("method"))
    return (f"Combined verdict: {combined['prediction']}, score {float(combined['score']):.3f} "
            f"({method} of {', '.join(used)}; threshold {float(combined.get('threshold', 0.5)):g}).")


def evidence_level(combined: dict[str, Any] | None) -> dict[str, Any] | None:
    """An ensemble's evidence level, its summary and reasons, when the ensemble gives one.

    Reads ``combined["evidence"]`` (a level, or an object with ``level`` and ``reasons``)
    with ``combined["summary"]`` and ``combined["reasons"]`` (the ensemble's own words).
    """
    if not combined:
        return None
    ev = combined.get("evidence")
    level = reasons = None
    if isinstance(ev, dict):
        level, reasons = ev.get("level"), ev.get("reasons")
    elif isinstance(ev, str):
        level = ev
    level = level or combined.get("evidence_level")
    reasons = reasons or combined.get("reasons") or combined.get("evidence_reasons")
    if not level:
        return None
    if isinstance(reasons, str):
        reasons = [reasons]
    summary = combined.get("summary")
    return {"level": str(level), "words": summary.rstrip(".") if isinstance(summary, str) and summary
            else EVIDENCE_LEVELS.get(str(level), f"{level} evidence"),
            "reasons": [r if isinstance(r, str) else json.dumps(r) for r in (reasons or [])]}


def human_bytes(n: int | None) -> str:
    if n is None:
        return "unknown"
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def value_text(value: Any) -> str:
    """An option or fact value as text (JSON for lists and objects)."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value)
    return "none" if value is None else str(value)


def media_facts(media: dict[str, Any] | None, sha256: str | None) -> list[tuple[str, str]]:
    """(label, value) rows about the file: container, codecs, size, fps, duration, hash."""
    m = media or {}
    rows: list[tuple[str, str]] = []

    def add(label: str, value: Any) -> None:
        if value not in (None, "", []):
            rows.append((label, value if isinstance(value, str) else value_text(value)))

    add("container", m.get("format_name"))
    add("video codec", m.get("video_codec") and f"{m['video_codec']}" + (f" ({m['pix_fmt']})" if m.get("pix_fmt") else ""))
    if m.get("width") and m.get("height"):
        add("picture size", f"{m['width']} x {m['height']} px" + (f", rotated {m['rotation']} degrees" if m.get("rotation") else ""))
    add("frame rate", m.get("fps") and f"{float(m['fps']):.3f}".rstrip("0").rstrip(".") + " fps")
    add("frames", m.get("frame_count") and f"{m['frame_count']}" + (f" ({m['frame_count_source']})" if m.get("frame_count_source") else ""))
    add("duration", m.get("duration") and f"{float(m['duration']):.3f} s")
    add("audio codec", m.get("audio_codec") and f"{m['audio_codec']}"
        + (f", {m['audio_sample_rate']} Hz" if m.get("audio_sample_rate") else "")
        + (f", {m['audio_channels']} channel(s)" if m.get("audio_channels") else ""))
    add("audio length", m.get("audio_seconds") and f"{float(m['audio_seconds']):.3f} s")
    add("file size", m.get("size_bytes") and human_bytes(int(m["size_bytes"])))
    add("sha256", sha256)
    return rows

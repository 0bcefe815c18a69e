"""Segments: where a detector thinks the media is fake, as ``[start_s, end_s, score]``.

The AV-Deepfake1M submission form (temporal localisation), computed the same way for
every detector from its scored windows:

* a window takes part when its score is at or above the threshold;
* two such windows are adjacent when, in frames, the next one starts at or before
  the previous one ends (``next.start_frame <= prev.end_frame + 1``: windows that
  overlap or touch; ``end_frame`` is inclusive), taken in order of start frame;
* each run of adjacent windows is one segment, from its first window's
  ``start_time`` to the latest ``end_time`` among them, scored by their maximum score;
* segments are sorted by score, highest first (ties: earlier first).

A window here is any mapping or object with ``start_frame``, ``end_frame``,
``start_time``, ``end_time`` and ``score``: LipFD's windows of L frames, or one
frame per window for a frame-level detector.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

_FIELDS = ("start_frame", "end_frame", "start_time", "end_time", "score")


def _fields(window: Any) -> tuple[int, int, float, float, float]:
    if isinstance(window, Mapping):
        values = [window[name] for name in _FIELDS]
    else:
        values = [getattr(window, name) for name in _FIELDS]
    return int(values[0]), int(values[1]), float(values[2]), float(values[3]), float(values[4])


def segments_from_windows(windows: Iterable[Any], threshold: float) -> list[list[float]]:
    """Merge adjacent windows scored at or above ``threshold`` into ``[start_s, end_s, score]`` (see the module doc)."""
    hot = sorted((_fields(w) for w in windows), key=lambda f: (f[0], f[1]))
    hot = [f for f in hot if f[4] >= threshold]
    segments: list[list[float]] = []
    last_end_frame = None
    for start_frame, end_frame, start_s, end_s, score in hot:
        if last_end_frame is not None and start_frame <= last_end_frame + 1:
            seg = segments[-1]
            seg[1], seg[2] = max(seg[1], end_s), max(seg[2], score)
            last_end_frame = max(last_end_frame, end_frame)
        else:
            segments.append([start_s, end_s, score])
            last_end_frame = end_frame
    return sorted(segments, key=lambda s: (-s[2], s[0]))

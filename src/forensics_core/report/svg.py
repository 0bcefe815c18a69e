"""Small inline-SVG plots: the per-file timeline, region-weight bars, ROC/PR curves.

Why hand-written: a report must be one self-contained file that opens without
network, and these plots are rectangles, lines and text; matplotlib would add a
heavy dependency for that. Every function returns :class:`markupsafe.Markup` and
escapes every string it is given (detector ids, reasons, captions come from results).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from markupsafe import Markup, escape

#: colours: below the threshold (real-looking), at or above it (fake-looking), segments, neutral
REAL_COLOUR = "#3b7dd8"
FAKE_COLOUR = "#d8433b"
SEGMENT_COLOUR = "#d8433b"
MUTED = "#8a8f98"
INK = "#1f2328"


def _n(v: float) -> str:
    """A coordinate, short."""
    return f"{v:.2f}".rstrip("0").rstrip(".") if math.isfinite(v) else "0"


def _score_colour(score: float, threshold: float) -> str:
    """Blue below the threshold, red at or above, darker the further from it."""
    if score >= threshold:
        t = (score - threshold) / max(1e-9, 1 - threshold)
        base, light = (216, 67, 59), (242, 176, 170)
    else:
        t = (threshold - score) / max(1e-9, threshold)
        base, light = (59, 125, 216), (170, 199, 242)
    t = 0.35 + 0.65 * min(1.0, max(0.0, t))
    r, g, b = (round(li + (ba - li) * t) for li, ba in zip(light, base))
    return f"#{r:02x}{g:02x}{b:02x}"


def nice_step(span: float, target: int = 8) -> float:
    """A 1/2/5 x 10^k tick step giving about ``target`` ticks over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)


def format_time(seconds: float, span: float) -> str:
    """``12.5 s`` for short media, ``m:ss`` from two minutes, ``h:mm:ss`` from two hours."""
    if span < 120:
        return f"{seconds:g} s" if seconds == int(seconds) else f"{seconds:.2f}".rstrip("0") + " s"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if span >= 7200 else f"{s // 60}:{s % 60:02d}"


@dataclass
class Mark:
    """One window on a lane: its span in seconds, score, a tooltip and an optional link target."""

    start: float
    end: float
    score: float
    title: str
    href: str | None = None


@dataclass
class Lane:
    """One detector's row on the timeline."""

    label: str
    status: str  # ok | abstained | error
    threshold: float = 0.5
    marks: list[Mark] = field(default_factory=list)
    segments: list[tuple[float, float, float]] = field(default_factory=list)  # (start, end, score)
    note: str = ""  # shown across an abstained / failed lane


LANE_H = 58
PLOT_H = 40
LEFT = 150
RIGHT = 16
MAX_MARKS = 1500  # beyond this, windows are binned per pixel column (max score), so the SVG stays small


def _binned(marks: list[Mark], duration: float, width: float) -> list[Mark]:
    """Thousands of windows (dense sampling): one mark per pixel column holding the highest score."""
    cols: dict[int, Mark] = {}
    for m in marks:
        c = int(m.start / duration * width) if duration > 0 else 0
        best = cols.get(c)
        if best is None or m.score > best.score:
            cols[c] = Mark(m.start, max(m.end, m.start + duration / width), m.score, m.title, m.href)
    return [cols[c] for c in sorted(cols)]


def timeline(lanes: Sequence[Lane], duration: float, *, width: int = 960, element_id: str = "timeline") -> Markup:
    """Every detector's windows on one time axis: bars as tall as the score, the threshold
    dashed, segments as red bands along the top, abstentions and errors written across.
    """
    duration = duration if duration and duration > 0 else max((m.end for ln in lanes for m in ln.marks), default=1.0) or 1.0
    plot_w = width - LEFT - RIGHT
    top = 8
    height = top + LANE_H * max(1, len(lanes)) + 30

    def x(t: float) -> float:
        return LEFT + plot_w * min(max(t, 0.0), duration) / duration

    out = [f'<svg class="timeline" id="{escape(element_id)}" role="img" viewBox="0 0 {width} {height}" '
           f'width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">',
           f'<title>Timeline: window scores over {escape(format_time(duration, duration))}</title>',
           '<defs><pattern id="hatch-' + escape(element_id) + '" width="8" height="8" patternUnits="userSpaceOnUse" '
           'patternTransform="rotate(45)"><rect width="8" height="8" fill="#f1f2f4"/>'
           '<line x1="0" y1="0" x2="0" y2="8" stroke="#d4d7dc" stroke-width="3"/></pattern></defs>']
    step = nice_step(duration)
    t = 0.0
    while t <= duration + 1e-9:
        out.append(f'<line x1="{_n(x(t))}" y1="{top}" x2="{_n(x(t))}" y2="{height - 24}" stroke="#eceef1"/>')
        out.append(f'<text x="{_n(x(t))}" y="{height - 8}" font-size="11" text-anchor="middle" fill="{MUTED}">'
                   f'{escape(format_time(t, duration))}</text>')
        t = round(t + step, 9)
    for i, lane in enumerate(lanes):
        y0 = top + i * LANE_H
        base = y0 + PLOT_H + 6
        out.append(f'<g class="lane" data-status="{escape(lane.status)}">')
        out.append(f'<text x="{LEFT - 8}" y="{y0 + 22}" font-size="12" font-weight="600" text-anchor="end" fill="{INK}">'
                   f'{escape(lane.label)}</text>')
        out.append(f'<text x="{LEFT - 8}" y="{y0 + 37}" font-size="10.5" text-anchor="end" fill="{MUTED}">'
                   f'{escape(lane.status)}</text>')
        out.append(f'<rect x="{LEFT}" y="{y0 + 6}" width="{plot_w}" height="{PLOT_H}" fill="#fafbfc" stroke="#e1e4e8"/>')
        if lane.status != "ok":
            out.append(f'<rect x="{LEFT}" y="{y0 + 6}" width="{plot_w}" height="{PLOT_H}" fill="url(#hatch-{escape(element_id)})"/>')
            out.append(f'<text x="{LEFT + plot_w / 2}" y="{y0 + 6 + PLOT_H / 2 + 4}" font-size="12" text-anchor="middle" '
                       f'fill="{INK}">{escape(lane.note or lane.status)}</text></g>')
            continue
        for start, end, score in lane.segments:
            out.append(f'<rect class="segment" x="{_n(x(start))}" y="{y0 + 6}" width="{_n(max(1.5, x(end) - x(start)))}" '
                       f'height="{PLOT_H}" fill="{SEGMENT_COLOUR}" fill-opacity="0.10"/>')
            out.append(f'<rect x="{_n(x(start))}" y="{y0 + 2}" width="{_n(max(1.5, x(end) - x(start)))}" height="4" '
                       f'fill="{SEGMENT_COLOUR}"><title>segment {escape(f"{start:.2f}")}-{escape(f"{end:.2f}")} s, '
                       f'score {escape(f"{score:.3f}")}</title></rect>')
        marks = lane.marks if len(lane.marks) <= MAX_MARKS else _binned(lane.marks, duration, plot_w)
        for m in marks:
            h = max(1.0, PLOT_H * min(max(m.score, 0.0), 1.0))
            rect = (f'<rect class="window" x="{_n(x(m.start))}" y="{_n(base - h)}" width="{_n(max(1.5, x(m.end) - x(m.start)))}" '
                    f'height="{_n(h)}" fill="{_score_colour(m.score, lane.threshold)}" fill-opacity="0.85">'
                    f'<title>{escape(m.title)}</title></rect>')
            out.append(f'<a href="{escape(m.href)}">{rect}</a>' if m.href else rect)
        ty = base - PLOT_H * lane.threshold
        out.append(f'<line class="threshold" x1="{LEFT}" y1="{_n(ty)}" x2="{LEFT + plot_w}" y2="{_n(ty)}" stroke="{INK}" '
                   f'stroke-dasharray="4 3" stroke-width="1"><title>threshold {lane.threshold:g}</title></line>')
        out.append('</g>')
    out.append(f'<line x1="{LEFT}" y1="{height - 24}" x2="{LEFT + plot_w}" y2="{height - 24}" stroke="{MUTED}"/>')
    out.append('</svg>')
    return Markup("".join(out))


def weight_bars(weights: dict[str, float], *, detail: dict[str, Sequence[float]] | None = None, width: int = 220) -> Markup:
    """Horizontal bars, one per region (LipFD: full / face / lip), with the value written beside."""
    rows = list(weights.items())
    label_w, bar_w, row_h = 40, width - 40 - 44, 16
    height = row_h * len(rows) + 4
    out = [f'<svg class="weights" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           'xmlns="http://www.w3.org/2000/svg"><title>region weights</title>']
    for i, (name, value) in enumerate(rows):
        y = 2 + i * row_h
        v = min(max(float(value), 0.0), 1.0)
        tip = f"{name}: {value:.3f}" + (f" (per frame: {', '.join(f'{w:.3f}' for w in detail[name])})" if detail and name in detail else "")
        out.append(f'<g><title>{escape(tip)}</title>'
                   f'<text x="{label_w - 4}" y="{y + 11}" font-size="11" text-anchor="end" fill="{INK}">{escape(name)}</text>'
                   f'<rect x="{label_w}" y="{y + 2}" width="{bar_w}" height="{row_h - 5}" fill="#eef0f3"/>'
                   f'<rect x="{label_w}" y="{y + 2}" width="{_n(bar_w * v)}" height="{row_h - 5}" fill="#6b5bd6"/>'
                   f'<text x="{label_w + bar_w + 4}" y="{y + 11}" font-size="11" fill="{INK}">{value:.2f}</text></g>')
    out.append("</svg>")
    return Markup("".join(out))


def score_bar(score: float, threshold: float, *, width: int = 160) -> Markup:
    """A score on a 0..1 bar with the threshold marked."""
    h = 12
    out = [f'<svg class="score-bar" role="img" viewBox="0 0 {width} {h}" width="{width}" height="{h}" '
           f'xmlns="http://www.w3.org/2000/svg"><title>score {score:.3f}, threshold {threshold:g}</title>'
           f'<rect width="{width}" height="{h}" fill="#eef0f3"/>'
           f'<rect width="{_n(width * min(max(score, 0), 1))}" height="{h}" fill="{_score_colour(score, threshold)}"/>'
           f'<line x1="{_n(width * threshold)}" y1="0" x2="{_n(width * threshold)}" y2="{h}" stroke="{INK}" stroke-width="1.5"/>'
           "</svg>"]
    return Markup("".join(out))


@dataclass
class Series:
    """A curve for :func:`line_chart`: points, a legend label, a dash style, a step (post) or straight line."""

    xs: Sequence[float]
    ys: Sequence[float]
    label: str
    dash: str = ""
    step: bool = False
    marker: tuple[float, float] | None = None


def line_chart(series: Sequence[Series], *, title: str, xlabel: str, ylabel: str, diagonal: bool = False,
               empty_note: str = "undefined: needs real and fake samples", size: int = 380,
               legend: str = "left") -> str:
    """A square 0..1 x 0..1 chart (ROC, precision-recall) as a standalone SVG document."""
    m_left, m_bottom, m_top, m_right = 48, 44, 30, 14
    w = size - m_left - m_right
    h = size - m_top - m_bottom
    palette = ["#3b5bdb", "#e8590c", "#2b8a3e", "#862e9c"]

    def px(v: float) -> float:
        return m_left + w * v

    def py(v: float) -> float:
        return m_top + h * (1 - v)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" width="{size}" height="{size}" '
           f'font-family="sans-serif"><title>{escape(title)}</title><rect width="{size}" height="{size}" fill="white"/>',
           f'<text x="{size / 2}" y="18" font-size="14" font-weight="600" text-anchor="middle">{escape(title)}</text>']
    for k in range(6):
        v = k / 5
        out.append(f'<line x1="{_n(px(v))}" y1="{m_top}" x2="{_n(px(v))}" y2="{m_top + h}" stroke="#eceef1"/>'
                   f'<line x1="{m_left}" y1="{_n(py(v))}" x2="{m_left + w}" y2="{_n(py(v))}" stroke="#eceef1"/>'
                   f'<text x="{_n(px(v))}" y="{m_top + h + 14}" font-size="10" text-anchor="middle">{v:.1f}</text>'
                   f'<text x="{m_left - 6}" y="{_n(py(v) + 3)}" font-size="10" text-anchor="end">{v:.1f}</text>')
    out.append(f'<rect x="{m_left}" y="{m_top}" width="{w}" height="{h}" fill="none" stroke="{MUTED}"/>')
    out.append(f'<text x="{m_left + w / 2}" y="{size - 8}" font-size="11" text-anchor="middle">{escape(xlabel)}</text>')
    out.append(f'<text x="12" y="{m_top + h / 2}" font-size="11" text-anchor="middle" '
               f'transform="rotate(-90 12 {m_top + h / 2})">{escape(ylabel)}</text>')
    if diagonal:
        out.append(f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(1)}" y2="{py(1)}" stroke="{MUTED}" stroke-dasharray="2 3"/>')
    drawn = [s for s in series if len(s.xs)]
    for i, s in enumerate(drawn):
        colour = palette[i % len(palette)]
        pts: list[tuple[float, float]] = []
        for j, (xv, yv) in enumerate(zip(s.xs, s.ys)):
            if s.step and pts:
                pts.append((xv, s.ys[j - 1]))  # hold the previous value up to this x, as a post-step
            pts.append((xv, yv))
        path = " ".join(f"{_n(px(a))},{_n(py(b))}" for a, b in pts)
        out.append(f'<polyline class="curve" points="{path}" fill="none" stroke="{colour}" stroke-width="2"'
                   + (f' stroke-dasharray="{s.dash}"' if s.dash else "") + "/>")
        if s.marker is not None:
            out.append(f'<circle cx="{_n(px(s.marker[0]))}" cy="{_n(py(s.marker[1]))}" r="4" fill="{colour}"/>')
        ly = m_top + h - 10 - 16 * (len(drawn) - 1 - i)
        lx = m_left + 10 if legend == "left" else m_left + w - 200
        out.append(f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 20}" y2="{ly - 4}" stroke="{colour}" stroke-width="2"'
                   + (f' stroke-dasharray="{s.dash}"' if s.dash else "") + "/>"
                   f'<text x="{lx + 25}" y="{ly}" font-size="11">{escape(s.label)}</text>')
    if not drawn:
        out.append(f'<text x="{m_left + w / 2}" y="{m_top + h / 2}" font-size="12" text-anchor="middle">{escape(empty_note)}</text>')
    out.append("</svg>")
    return "".join(out)

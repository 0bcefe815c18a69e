"""Parsing what ``ffmpeg -i`` prints: the ``Input #0`` section, its streams, open failures.

Kept apart from :mod:`.probe` so the parser can be read (and tested) on its own.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import MediaProcessingError
from .ffmpeg import _last_line

_PLACEHOLDER = b"file:INPUT"
#: ffmpeg >= 5 prints streams indented by two spaces, ffmpeg 4 by four (after ``Duration:``)
_STREAM_RE = re.compile(r"^ {2}(?: {2})?Stream #(\d+):(\d+)(?:\[[^\]]*\])?(?:\(([^)]*)\))?: (\w+): ?(.*)$")
_INPUT_RE = re.compile(r"^Input #0, (.+?), from '")
_PROBE_SCORE_RE = re.compile(r"Format (\S+) probed with size=\d+ and score=(\d+)")
_LOW_SCORE_RE = re.compile(r"Format (\S+) detected only with low score of (\d+)")
_ROTATION_RE = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees")
_ROTATE_TAG_RE = re.compile(r"^\s+rotate\s*:\s*(-?\d+(?:\.\d+)?)\s*$", re.M)
# Demuxers that read exactly one picture from the file (image2 and the *_pipe family).
_IMAGE_FORMATS = ("image2", "_pipe")

_NAMED_LAYOUTS = {
    "mono": 1,
    "stereo": 2,
    "downmix": 2,
    "binaural": 2,
    "quad": 4,
    "hexagonal": 6,
    "octagonal": 8,
    "cube": 8,
    "hexadecagonal": 16,
}


def _channels(layout: str) -> int | None:
    """Channel count from ffmpeg's layout text: ``mono``, ``5.1(side)``, ``7.1.4``, ``6 channels``."""
    layout = layout.strip()
    m = re.match(r"(\d+) channels\b", layout)
    if m:
        return int(m.group(1))
    name = layout.split("(", 1)[0].strip()
    if name in _NAMED_LAYOUTS:
        return _NAMED_LAYOUTS[name]
    if re.fullmatch(r"\d+(\.\d+){1,2}", name):  # 2.1, 5.1, 7.1, 5.1.2, 22.2 ...: sum of the parts
        return sum(int(p) for p in name.split("."))
    return None


def _split_top(text: str) -> list[str]:
    """Split an ffmpeg stream description at commas that are not inside parentheses/brackets."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur).strip())
    return parts


@dataclass
class _Stream:
    index: int
    kind: str  # "Video", "Audio", "Subtitle", "Data", "Attachment", ...
    desc: str  # text after "Video: "
    lines: list[str]  # the stream line and its indented block

    @property
    def attached_pic(self) -> bool:
        return "(attached pic)" in self.lines[0]

    @property
    def codec(self) -> str | None:
        m = re.match(r"(\w+)", self.desc)
        return m.group(1) if m else None


def _input_section(text: str) -> tuple[str | None, list[str]]:
    """Return (format_name, lines of the ``Input #0`` section, header line included)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = _INPUT_RE.match(line)
        if m:
            section = [line]
            for rest in lines[i + 1 :]:
                if rest and not rest.startswith(" "):
                    break  # "At least one output file must be specified", log lines ...
                if rest.strip():
                    section.append(rest)
            return m.group(1), section
    return None, []


def _streams(section: list[str]) -> tuple[list[str], list[_Stream]]:
    """Split the ``Input #0`` section into header lines and top-level stream blocks.

    Top-level entries are indented by exactly two spaces; each stream's metadata and
    side data follow, indented deeper (so text inside a metadata value can never pose as
    a stream). Two kinds of block are dropped because moviepy's parser crashes on them
    and we need nothing from them:

    * stream groups (ffmpeg >= 7: ``Stream group #0:0: Tile Grid`` for HEIF); their
      member streams are listed again at the top level;
    * ``Chapters:``: with exactly one chapter moviepy 2.x raises ``IndexError``.
    """
    head: list[str] = section[:1]
    streams: list[_Stream] = []
    current: list[str] | None = None
    skipping = False
    for line in section[1:]:
        m = _STREAM_RE.match(line)
        if m:  # a stream starts a block at any of the two indentations
            current, skipping = [line], False
            streams.append(_Stream(int(m.group(2)), m.group(4), m.group(5), current))
            continue
        if line.startswith("  ") and not line.startswith("   "):
            current, skipping = None, False
            if line.startswith("  Stream group") or line.startswith("  Chapters:"):
                skipping = True
                continue
            head.append(line)
        elif skipping:
            continue
        elif current is not None:
            current.append(line)
        else:
            head.append(line)
    return head, streams


def _classify_open_failure(p: Path, stderr: str, debug: str) -> MediaProcessingError:
    """ffmpeg printed no ``Input #0``: decide why.

    ``unsupported_format`` when no demuxer recognised the content (only the file
    extension matched, which ffmpeg reports as "detected only with low score", or
    nothing matched at all); ``decode_failed`` when a demuxer recognised the content
    (probe score above the extension-only score) but could not open it: a truncated mp4
    without its ``moov`` atom, a webm cut inside its header. The distinction picks the
    right hint: convert the file vs. fetch or repair it.
    """
    last = _last_line(stderr.encode())
    low = stderr.lower()
    if "permission denied" in low:
        return MediaProcessingError("unreadable", f"ffmpeg may not read {p}: {last}", path=p)
    if "no such file or directory" in low:
        return MediaProcessingError("file_not_found", f"{p} disappeared before ffmpeg opened it", path=p)
    if "is a directory" in low:
        return MediaProcessingError("not_a_file", f"{p} is a directory", path=p)
    recognised = [(fmt, int(score)) for fmt, score in _PROBE_SCORE_RE.findall(debug) if int(score) > 50]
    if recognised and not _LOW_SCORE_RE.search(stderr):
        details = [ln.split("] ", 1)[1] for ln in stderr.splitlines() if ln.startswith("[") and "] " in ln]
        details = [d for d in details if not d.startswith("Error opening input")] or [last]
        return MediaProcessingError(
            "decode_failed",
            f"{p} looks like {recognised[0][0]} but is damaged or truncated: {'; '.join(details)[:500]}",
            path=p,
        )
    return MediaProcessingError("unsupported_format", f"no demuxer recognises {p} as audio or video ({last})", path=p)

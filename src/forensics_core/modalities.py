"""What a file offers, what a detector needs, and the one rule that matches them.

A file offers ``video`` (moving pictures), ``audio`` and ``image`` (a single still
picture: a photo is not a video of one frame, it has no motion). A detector's card
lists what it looks at. The visual modalities are alternatives: a card that lists
both ``video`` and ``image`` (GenD) runs on either; every other listed modality is
required (LipFD needs ``video`` and ``audio``). When something is missing the
detector abstains, with a machine-readable code and a sentence for people, instead
of being run to fail: a detector never gives a verdict on what it cannot see.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

Modality = Literal["video", "audio", "image"]
VISUAL: tuple[str, ...] = ("video", "image")

#: abstain code -> sentence. The codes reuse the media error codes where one exists.
ABSTAIN_REASONS: dict[str, str] = {
    "no_audio_track": "no audio track",
    "no_video_stream": "no video stream",
    "still_image": "a still image has no motion and no sound",
    "no_image": "not a still image",
    "no_face": "no face was found",
}


def missing_modalities(needs: Iterable[str], has: Iterable[str]) -> list[str]:
    """The modalities a detector needs that the file lacks (empty: it can run).

    Visual modalities count as one requirement satisfied by any of them.
    """
    needs, has = list(needs), set(has)
    visual = [m for m in needs if m in VISUAL]
    missing = [] if not visual or has.intersection(visual) else visual
    return missing + [m for m in needs if m not in VISUAL and m not in has]


def abstention(needs: Iterable[str], has: Iterable[str]) -> tuple[str, str] | None:
    """``(code, sentence)`` when a detector that needs ``needs`` cannot judge a file that has ``has``."""
    has = set(has)
    missing = missing_modalities(needs, has)
    if not missing:
        return None
    if "image" in has and "video" in missing:
        code = "still_image"
        wanted = " and ".join(m for m in missing if m != "image")
        return code, f"{ABSTAIN_REASONS[code]} (the detector needs {wanted})"
    first = missing[0]
    code = {"audio": "no_audio_track", "video": "no_video_stream", "image": "no_image"}[first]
    return code, ABSTAIN_REASONS[code]

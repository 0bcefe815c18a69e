"""Fixtures with real faces: ``face_clip(name)``, the clips of face_clips.CLIPS, each made once per session."""
from __future__ import annotations

from pathlib import Path

import pytest

from face_clips import CLIPS, make_face_clip


@pytest.fixture(scope="session")
def face_clip(tmp_path_factory):
    """``face_clip(name)``: the composed clip ``name`` of face_clips.CLIPS (1280x720, 120 frames, speech)."""
    folder = tmp_path_factory.mktemp("face_clips")
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            made[name] = make_face_clip(folder / f"{name}.mp4", CLIPS[name])
        return made[name]

    return get

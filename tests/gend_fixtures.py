"""Pytest plugin: GenD reference vector g1 and the stand-in weights.

``gend_weights`` writes the 1.2 GB stand-in in the released layout once per session
(about 15 s, 1.9 GB peak) and deletes it afterwards. ``FORENSICS_TEST_GEND_WEIGHTS``
may name an existing stand-in made by tests/gend_standin.py to skip that (development only).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

G1 = Path(__file__).parent / "data" / "gend_g1"


@pytest.fixture(scope="session")
def g1_expected() -> dict:
    return json.loads((G1 / "expected.json").read_text())


@pytest.fixture(scope="session")
def g1_landmarks() -> list[list[float]]:
    return json.loads((G1 / "landmarks.json").read_text())["landmarks_xy"]


@pytest.fixture(scope="session")
def gend_weights(tmp_path_factory: pytest.TempPathFactory):
    existing = os.environ.get("FORENSICS_TEST_GEND_WEIGHTS")
    if existing:
        yield Path(existing)
        return
    from gend_standin import write_standin

    path = write_standin(tmp_path_factory.mktemp("gend_weights") / "gend_standin.safetensors")
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def gend(gend_weights):
    """GEND-CLIP-L14 loaded once for the session (CPU, fp32), through the public API."""
    from forensics_core import load_model

    detector = load_model("GEND-CLIP-L14", weights=gend_weights, device="cpu", precision="fp32")
    yield detector
    detector.unload()

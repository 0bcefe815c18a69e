"""Pytest plugin: LipFD reference vector v1 and the stand-in checkpoint.

``standin_checkpoint`` writes the 1.8 GB stand-in in the released format once per
session (about 20 s) and deletes it afterwards. ``FORENSICS_TEST_WEIGHTS`` may name
an existing stand-in made by tests/lipfd_standin.py to skip that (development only).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

V1 = Path(__file__).parent / "data" / "lipfd_v1"


@pytest.fixture(scope="session")
def v1_expected() -> dict:
    return json.loads((V1 / "expected.json").read_text())


@pytest.fixture(scope="session")
def standin_checkpoint(tmp_path_factory: pytest.TempPathFactory):
    existing = os.environ.get("FORENSICS_TEST_WEIGHTS")
    if existing:
        yield Path(existing)
        return
    from lipfd_standin import write_standin_checkpoint

    path = write_standin_checkpoint(tmp_path_factory.mktemp("weights") / "lipfd_standin.pth")
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def lipfd(standin_checkpoint):
    """LIPFD-V1 loaded once for the session (CPU, fp32), through the public API."""
    from forensics_core import load_model

    detector = load_model("LIPFD-V1", weights=standin_checkpoint, device="cpu", precision="fp32")
    yield detector
    detector.unload()


@pytest.fixture(scope="session")
def v1_result(lipfd):
    """LIPFD-V1 on v1.mp4 alone (audio from the container), end to end."""
    return lipfd.analyze(V1 / "v1.mp4")

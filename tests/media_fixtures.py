"""Pytest plugin (see ``pytest_plugins`` in conftest.py): real media files for tests.

* ``media_corpus``: session-scoped ``{case name: path}`` for every case in
  :data:`media_corpus.CASES` (hostile and odd files, built once per session, ~5 s).
  It contains a FIFO (``fifo``) and a directory (``directory``): never ``open()`` corpus
  paths blindly.
* ``good_clip``: session-scoped path of a plausible detector input: 640x480, 25 fps,
  4 s, H.264 yuv420p + AAC 16 kHz mono, a cartoon face whose mouth moves with the
  speech-like audio. Built on its own (about 1 s), so tests that need only it do not
  pay for the whole corpus.
* ``make_clip``: re-exported from :mod:`media_corpus`, to write other real videos
  (``make_clip(tmp_path / "x.mkv", seconds=2, size=(320, 240), audio=False)``).

Tests must treat the session files as read-only; copy one to ``tmp_path`` to alter it.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from media_corpus import CASES, make_clip, make_corpus

__all__ = ["CASES", "make_clip", "make_corpus"]


@pytest.fixture(scope="session")
def media_corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every corpus case, generated once per session: ``{case name: path}``."""
    return make_corpus(tmp_path_factory.mktemp("media_corpus"))


@pytest.fixture(scope="session")
def good_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus's ``good`` case (see :data:`media_corpus.CASES`), built alone."""
    return make_corpus(tmp_path_factory.mktemp("good_clip"), ["good"])["good"]

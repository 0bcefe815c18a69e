"""Pytest plugin (see ``pytest_plugins`` in conftest.py): a real headless Chromium, driven by Playwright.

* ``browser``: session-scoped Playwright ``Browser`` running Debian's ``/usr/bin/chromium``
  (``FORENSICS_CHROMIUM`` overrides the path). Playwright never downloads a browser here:
  it drives the system one through ``executable_path``. Skipped, with the install command,
  where Chromium or the ``playwright`` package is missing (``.ci/run`` installs both).
* ``open_page``: function-scoped factory ``open_page(url, *, viewport=(1280, 900))``
  returning a :class:`Visit`: the loaded page plus everything it did: every request URL,
  console messages by type, uncaught page errors. The page's context is closed after the test.
* :func:`assert_offline` checks a Visit made no request except ``file:``/``data:`` and logged
  no console error; :func:`pixel_spread` tells a blank screenshot from a real one.

One Chromium for the whole session (about 1 s to start); each test gets a fresh context,
so cookies and storage never leak between tests.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    explicit = os.environ.get("FORENSICS_CHROMIUM")
    if explicit:
        return explicit
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser():
    """The session's headless Chromium (Playwright ``Browser``)."""
    exe = chromium_path()
    if exe is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra has it)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Visit:
    """A page and what it did while loading and afterwards."""

    page: Any
    requests: list[str] = field(default_factory=list)
    console: list[tuple[str, str]] = field(default_factory=list)  # (type, text)
    errors: list[str] = field(default_factory=list)

    @property
    def console_errors(self) -> list[str]:
        return [text for kind, text in self.console if kind == "error"]


@pytest.fixture
def open_page(browser):
    """``open_page(url_or_path)`` -> :class:`Visit`, recorded from the first request on."""
    contexts = []

    def visit(target: str | os.PathLike, *, viewport: tuple[int, int] = (1280, 900)) -> Visit:
        url = Path(target).resolve().as_uri() if not str(target).startswith(("http:", "https:", "file:", "data:")) else str(target)
        context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, service_workers="block")
        contexts.append(context)
        page = context.new_page()
        record = Visit(page)
        page.on("request", lambda r: record.requests.append(r.url))
        page.on("console", lambda m: record.console.append((m.type, m.text)))
        page.on("pageerror", lambda e: record.errors.append(str(e)))
        page.goto(url, wait_until="load")
        return record

    yield visit
    for context in contexts:
        context.close()


def assert_offline(visit: Visit) -> None:
    """Only the page itself (file:) and data: URIs were requested; no console error, no page error."""
    foreign = [u for u in visit.requests if not u.startswith(("file:", "data:"))]
    assert foreign == [], f"network requests: {foreign}"
    assert visit.console_errors == [] and visit.errors == [], (visit.console_errors, visit.errors)


def pixel_spread(png: bytes) -> float:
    """Standard deviation of a screenshot's grey levels: about 0 for a blank page."""
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(png, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    return float(image.std())

#!/usr/bin/env python
"""Make docs/examples/report.html and docs/images/report.png from a clip the tests generate.

The clip is tests/media_corpus.make_clip's cartoon face whose mouth moves with a
speech-like sound (4 s, 640x480). It is analysed by an ensemble of LIPFD-V1 (the
deterministic stand-in weights the tests generate, so **its scores mean nothing**; dense
sampling, and a threshold moved to the middle of its scores so that the page shows
windows on both sides of it and segments) and the FAKE-VISUAL test detector, with
``--report``'s capture (12 windows with pictures per detector); the page is then opened
in headless Chromium for the screenshot.

    FORENSICS_TEST_WEIGHTS=/path/to/lipfd_standin.pth python docs/examples/make_report_example.py
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
#: the stand-in's window scores on this clip lie around 0.19: a threshold among them shows both kinds of window
THRESHOLD = 0.1915


def main() -> int:
    from media_corpus import make_clip

    from forensics_core import load_model
    from forensics_core.ensemble import run_ensemble
    from forensics_core.report import capture_evidence, write_html
    from forensics_core.testing import FakeDetector, registered

    weights = os.environ.get("FORENSICS_TEST_WEIGHTS")
    if not weights:
        print("set FORENSICS_TEST_WEIGHTS to the stand-in checkpoint (tests/lipfd_standin.py writes one)", file=sys.stderr)
        return 2
    work = Path(tempfile.gettempdir()) / "forensics-example"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        clip = make_clip(work / "interview.mp4", seconds=4.0, size=(640, 480))
        out = ROOT / "docs" / "examples" / "report.html"
        with registered(FakeDetector):
            detectors = [load_model("LIPFD-V1", weights=weights, device="cpu"), FakeDetector().load()]
            options = {"FAKE-VISUAL": {"frames": 4, "stride": 25}, "LIPFD-V1": {"sampling": "dense", "threshold": THRESHOLD}}
            with capture_evidence(limit=12) as capture:
                docs = [d.to_dict() for d in run_ensemble(detectors, [clip], options=options)]
            write_html(docs, out, capture=capture, max_windows=12,
                       title="Example report: LIPFD-V1 (stand-in weights: its scores mean nothing; threshold "
                             f"moved to {THRESHOLD}) and the FAKE-VISUAL test detector on a generated clip")
        screenshot(out, ROOT / "docs" / "images" / "report.png")
        print(f"{out} ({out.stat().st_size} bytes)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def screenshot(page_path: Path, png: Path) -> None:
    from playwright.sync_api import sync_playwright

    png.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                     args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1500})
            page.goto(page_path.resolve().as_uri())
            page.screenshot(path=str(png), full_page=False)
        finally:
            browser.close()


if __name__ == "__main__":
    sys.exit(main())

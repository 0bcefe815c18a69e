"""Reports in a real browser: headless Chromium (Debian's), driven through Playwright.

A report made from real analyses of real clips (the test detectors, several files, an
abstention, an error, a hostile file name) is opened from file:// and must: load with no
console error and no request but its own file; show every timeline and every thumbnail
(decoded, with a size); not be blank; sort its index by a click; hide screen-only parts
and print to PDF.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from browser_fixtures import assert_offline, pixel_spread
from forensics_core.ensemble import run_ensemble
from forensics_core.report import capture_evidence, write_html
from forensics_core.testing import AudioFakeDetector, FakeDetector, registered
from media_corpus import make_clip

SMALL = {"seconds": 3.0, "size": (320, 240), "fps": 25}
HOSTILE = '<script>alert("x")<img src=x onerror=alert(1)>.mp4'


@pytest.fixture(scope="module")
def report_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser_report")
    clips = [make_clip(root / "speech.mp4", **SMALL), make_clip(root / "silent.mp4", audio=False, **SMALL),
             make_clip(root / HOSTILE, **SMALL), root / "gone.mp4"]
    with registered(FakeDetector, AudioFakeDetector):
        detectors = [FakeDetector().load(), AudioFakeDetector().load()]
        with capture_evidence() as capture:
            docs = [d.to_dict() for d in run_ensemble(detectors, clips, options={"FAKE-VISUAL": {"frames": 6, "stride": 12}})]
        return write_html(docs, root / "report.html", capture=capture)


def test_report_loads_offline_and_shows_its_evidence(open_page, report_file):
    visit = open_page(report_file)
    dialogs = []
    visit.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page = visit.page
    assert_offline(visit)
    assert visit.requests == [report_file.resolve().as_uri()]
    timelines = page.locator("svg.timeline")
    assert timelines.count() == 3  # the missing file has no time axis
    for i in range(timelines.count()):
        assert timelines.nth(i).is_visible() and timelines.nth(i).bounding_box()["width"] > 600
    thumbs = page.locator("img.thumb")
    assert thumbs.count() == 3 * 6
    for i in range(thumbs.count()):
        thumb = thumbs.nth(i)
        thumb.scroll_into_view_if_needed()
        assert thumb.is_visible()
        assert thumb.evaluate("img => img.complete && img.naturalWidth > 0 && img.naturalHeight > 0")
    assert pixel_spread(page.screenshot(full_page=True)) > 20  # not a blank page
    assert page.locator("script").count() == 1 and dialogs == []  # the hostile name ran nothing
    assert page.get_by_text(HOSTILE, exact=True).count() >= 1


def test_the_docs_example_report_loads_offline(open_page):
    example = Path(__file__).resolve().parents[1] / "docs" / "examples" / "report.html"
    visit = open_page(example)
    assert_offline(visit)
    assert visit.page.locator("svg.timeline").is_visible()
    thumbs = visit.page.locator("img.thumb")
    assert thumbs.count() == 12 + 4 and all(t.evaluate("i => i.naturalWidth > 0") for t in thumbs.all())
    assert visit.page.locator("svg.weights").count() == 12  # LIPFD-V1's region weights per window shown
    assert visit.page.locator("rect.segment").count() >= 1


def test_index_sorts_by_a_click_and_prints(open_page, report_file):
    page = open_page(report_file).page
    scores = lambda: [c.get_attribute("data-value") for c in page.locator("table.index tbody td.num").all()]  # noqa: E731
    first = scores()
    numbers = [float(s) for s in first if s]
    assert numbers == sorted(numbers, reverse=True) and first[-1] == ""
    page.locator("table.index th", has_text="score").click()
    assert page.locator("table.index th", has_text="score").get_attribute("aria-sort") == "ascending"
    again = [float(s) for s in scores() if s]
    assert again == sorted(numbers) and scores()[0] == ""
    page.emulate_media(media="print")
    assert not page.locator("p.no-print").first.is_visible()
    pdf = page.pdf(format="A4")
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
    assert pdf.startswith(b"%PDF") and pages >= 4, pages  # each file's section starts a page

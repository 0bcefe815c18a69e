"""The web page at ``/`` in a real headless Chromium: key, file, progress, verdict, report; keyboard only.

The page is driven with the keyboard alone (Tab to each control, Enter or Space to
act); it must request nothing but the service itself, and log no error.
"""
from __future__ import annotations

import time

import httpx
import pytest
from media_fixtures import make_clip


def wait_until(page, expression: str, timeout: float = 60) -> None:
    """Poll from here: the page's CSP forbids the eval that page.wait_for_function uses."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def page_service(module_services):
    svc = module_services("--models", "FAKE-VISUAL", "--workers", "1", name="page")
    svc.key = svc.new_key("browser")
    return svc


def test_the_page_uploads_a_clip_and_shows_the_verdict_and_report(page_service, open_page, tmp_path):
    clip = tmp_path / "talk.mp4"
    make_clip(clip, seconds=1.0, size=(160, 120))
    resp = httpx.get(page_service.url + "/")
    assert resp.status_code == 200 and "default-src 'none'" in resp.headers["Content-Security-Policy"]

    visit = open_page(page_service.url + "/")
    page = visit.page
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "key"
    page.keyboard.type(page_service.key)
    page.keyboard.press("Tab")  # leaving the field lists the detectors
    assert page.evaluate("document.activeElement.id") == "file"
    page.set_input_files("#file", str(clip))  # the file chooser itself is the OS's, not the page's
    page.wait_for_selector("input[name=models][value=FAKE-VISUAL]")
    while page.evaluate("document.activeElement.id") != "submit":
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")

    wait_until(page, "document.activeElement && document.activeElement.id === 'result-title'")
    verdict = page.inner_text("#verdict")
    assert verdict in ("Likely REAL", "Likely FAKE"), verdict
    assert "Score" in page.inner_text("#details")
    assert page.evaluate("document.getElementById('bar').value") == 1
    assert "Finished: succeeded" in page.inner_text("#status")
    report = page.frame_locator("#report")
    assert "talk.mp4" in report.locator("body").inner_text(timeout=10_000)

    job = httpx.get(page_service.url + "/v1/analyses", headers={"Authorization": f"Bearer {page_service.key}"}).json()["items"][0]
    assert job["media"]["name"] == "talk.mp4" and job["status"] == "succeeded"
    foreign = [u for u in visit.requests if not u.startswith((page_service.url, "data:", "blob:", "about:"))]
    assert foreign == [], foreign
    assert visit.console_errors == [] and visit.errors == [], (visit.console_errors, visit.errors)


def test_a_wrong_key_is_reported_on_the_page(page_service, open_page, tmp_path):
    clip = tmp_path / "x.mp4"
    make_clip(clip, seconds=1.0, size=(160, 120))
    page = open_page(page_service.url + "/").page
    page.fill("#key", "fsk_wrong")
    page.set_input_files("#file", str(clip))
    page.click("#submit")
    wait_until(page, "document.getElementById('status').textContent.startsWith('Error')", timeout=20)
    assert "valid API key" in page.inner_text("#status")

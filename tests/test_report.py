"""The HTML report, built from real analyses of real clips with the test detectors (no weights needed).

What the report promises and is checked here: one self-contained file (no URL that a browser
would fetch, a CSP that forbids fetching), verdicts and errors in words, a timeline with every
window, the image each window's detector read (captured during the analysis, or recomputed from
the media: the same pixels either way), face boxes over source frames, media facts with the
file's sha256, every string from a result escaped. The browser checks are in test_report_browser.py.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from forensics_core.ensemble import run_ensemble
from forensics_core.errors import InvalidOptionsError, MEDIA_ERROR_CODES
from forensics_core.report import capture_evidence, read_documents, render_html, write_html
from forensics_core.report import svg
from forensics_core.report.build import choose_windows
from forensics_core.testing import AudioFakeDetector, FakeDetector, registered
from html_page import Page

SRC = Path(__file__).resolve().parents[1] / "src"
HOSTILE = '<script>alert("x")<img src=x onerror=alert(1)> & "quotes" \'.mp4'  # no "/": it is a file name
SMALL = {"seconds": 3.0, "size": (320, 240), "fps": 25}
STRIDE = {"FAKE-VISUAL": {"frames": 8, "stride": 9}}


def _urls(page: Page) -> list[str]:
    return [v for _, a in page.tags for k, v in a.items() if k in ("src", "href", "xlink:href", "action", "poster", "data")]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("report_clips")
    return {"speech": make_clip(root / "speech.mp4", **SMALL),
            "silent": make_clip(root / "silent.mp4", audio=False, **SMALL),
            "hostile": make_clip(root / HOSTILE, **SMALL)}


def make_clip(path, **kw):
    from media_corpus import make_clip as _make

    return _make(path, **kw)


@pytest.fixture(scope="module", autouse=True)
def test_detectors():
    """FAKE-VISUAL and FAKE-AUDIO registered like any plugin's detectors, for this module."""
    with registered(FakeDetector, AudioFakeDetector):
        yield


@pytest.fixture(scope="module")
def analysed(clips):
    """An ensemble of both test detectors over the clips and a missing file, with evidence captured."""
    paths = [clips["speech"], clips["silent"], clips["hostile"], clips["speech"].with_name("gone.mp4")]
    detectors = [FakeDetector().load(), AudioFakeDetector().load()]
    with capture_evidence() as capture:
        docs = [r.to_dict() for r in run_ensemble(detectors, paths, options=STRIDE)]
    return {"docs": docs, "capture": capture, "detectors": {d.card.id: d for d in detectors}}


def test_everything_a_reader_needs_is_in_the_report(analysed, clips):
    html = render_html(analysed["docs"][:1], capture=analysed["capture"], detectors=analysed["detectors"])
    page = Page(html)
    doc = analysed["docs"][0]
    visual = doc["results"][0]
    assert [w["start_frame"] for w in visual["windows"]] == [0, 9, 18, 27, 36, 45, 54, 63]
    # verdicts in words, with the numbers
    assert f"FAKE-VISUAL calls it {visual['prediction']}: its score {visual['score']:.3f}" in page.words
    assert f"Combined verdict: {doc['combined']['prediction']}, score {doc['combined']['score']:.3f}" in page.words
    # the timeline: one lane per detector, every window a bar, the threshold line
    timeline = page.find("svg", class_="timeline")
    assert len(timeline) == 1
    assert len(page.find("rect", class_="window")) == 8 + 1  # 8 windows + FAKE-AUDIO's whole-file score
    assert len(page.find("line", class_="threshold")) == 2
    # each window: a card with the image the detector read, as a JPEG data URI
    thumbs = page.find("img", class_="thumb")
    assert len(thumbs) == 8 and all(t["src"].startswith("data:image/jpeg;base64,") for t in thumbs)
    assert {a["id"] for a in page.find("article", class_="window")} == {f"f0-d0-w{i}" for i in range(8)}
    # media facts with the file's sha256; versions, options
    sha = hashlib.sha256(clips["speech"].read_bytes()).hexdigest()
    for fact in ("mov,mp4,m4a,3gp,3g2,mj2", "h264 (yuv420p)", "320 x 240 px", "25 fps", "3.000 s", sha, "stride"):
        assert fact in page.words
    # self-contained: nothing a browser would fetch, and a CSP that forbids fetching anyway
    assert all(u.startswith(("data:", "#")) for u in _urls(page)), _urls(page)
    csp = page.find("meta", http_equiv="Content-Security-Policy")[0]["content"]
    assert "default-src 'none'" in csp and "img-src data:" in csp and "unsafe-inline" not in csp
    assert "@import" not in html and not re.search(r"url\((?!#)", html)  # CSS and SVG refer to the page only


def test_captured_images_equal_recomputed_ones_and_avoid_a_second_decode(analysed):
    """analyze --report keeps what the detector saw; report-from-JSON decodes again: the same pixels."""
    calls = []

    class Counting(FakeDetector):
        def evidence(self, media_path, result, *, windows=None):
            calls.append(windows)
            return super().evidence(media_path, result, windows=windows)

    doc = analysed["docs"][0]
    captured = render_html([doc], capture=analysed["capture"], detectors={"FAKE-VISUAL": Counting()})
    assert calls == []  # everything came from the capture
    recomputed = render_html([json.loads(json.dumps(doc))], detectors={"FAKE-VISUAL": Counting()})
    assert calls == [list(range(8))]
    srcs = lambda html: [t["src"] for t in Page(html).find("img", class_="thumb")]  # noqa: E731
    assert srcs(captured) == srcs(recomputed) and len(set(srcs(captured))) == 8


def test_abstentions_errors_and_missing_files_in_words(analysed):
    page = Page(render_html(analysed["docs"], capture=analysed["capture"]))
    words = page.words
    # the silent clip: FAKE-AUDIO abstains; its lane is hatched with the reason
    assert "FAKE-AUDIO abstained: the file has no audio track, and this detector needs the speech." in words
    assert "abstained: the file has no audio track" in words
    lanes = [a["data-status"] for a in page.find("g", class_="lane")]
    assert lanes.count("abstained") == 1 and lanes.count("ok") == 5
    # the missing file: an error row per detector with the documented meaning and hint
    meaning, hint = MEDIA_ERROR_CODES["file_not_found"]
    assert f"FAKE-VISUAL could not analyse the file: {meaning}" in words and f"What to do: {hint}" in words
    assert "(moved or deleted?)" in words
    # the index: every file, sorted by score, abstained/error last
    rows = [a for a in page.find("td") if "data-value" in a]
    scores = [float(a["data-value"]) for a in page.find("td", class_="num") if a["data-value"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 3
    assert len(page.find("section", class_="file")) == 4 and rows


def test_hostile_strings_are_escaped(analysed, clips):
    doc = json.loads(json.dumps(analysed["docs"][2]))
    assert doc["media_path"] == str(clips["hostile"])
    doc["results"][0]["warnings"] = ['<img src=y onerror=alert(3)> warning']
    doc["results"][0]["options"]["<b>opt</b>"] = "</table><script>alert(2)</script>"
    html = render_html([doc], capture=analysed["capture"])
    assert "<script>alert" not in html and "<img src=" not in html and "<b>opt" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;img src=x onerror=alert(1)&gt;" in html
    page = Page(html)
    assert HOSTILE in page.words and "<img src=y onerror=alert(3)> warning" in page.words
    assert len(page.find("script")) == 0  # one file: no sorting script at all
    assert len(page.find("img", class_="thumb")) == 8  # its images were still found by its (odd) name


def test_face_boxes_are_drawn_over_the_source_frame(analysed, clips):
    """Windows with a face_box (source pixels) get their source frame with the box, scaled with the thumbnail."""
    doc = json.loads(json.dumps(analysed["docs"][0]))
    w, h = SMALL["size"]
    box = [0.3125 * w, 0.2083 * h, 0.6875 * w, 0.8333 * h]  # where make_clip draws the face
    for win in doc["results"][0]["windows"]:
        win["face_box"], win["track"] = box, 0
    page = Page(render_html([doc], detectors=analysed["detectors"]))
    frames = [a for a in page.find("img", class_="thumb") if a["alt"].startswith("source frame")]
    assert len(frames) == 8 and frames[1]["alt"] == "source frame 9"
    rects = [a for t, a in page.tags if t == "rect" and a.get("stroke") == "#f0b429"]
    assert len(rects) == 8
    assert [float(rects[0][k]) for k in ("x", "y", "width", "height")] == pytest.approx([100, 50, 120, 150], abs=0.6)
    assert "face box" in page.words and "track 0" in page.words


def test_a_changed_file_gets_no_images(analysed, tmp_path):
    clip = tmp_path / "clip.mp4"
    shutil.copy(analysed["docs"][0]["results"][0]["media_path"], clip)
    det = FakeDetector().load()
    line = {**next(run_ensemble([det], [clip], options=STRIDE)).to_dict(),
            "file_key": {"path": str(clip), "size": clip.stat().st_size, "mtime_ns": clip.stat().st_mtime_ns}}
    with clip.open("ab") as fh:
        fh.write(b"\0" * 16)
    page = Page(render_html([line]))
    assert "has changed since the analysis" in page.words and page.find("img", class_="thumb") == []


def test_many_windows_binned_and_top_windows_chosen():
    marks = [svg.Mark(i * 0.2, i * 0.2 + 0.2, (i % 97) / 96, f"w{i}") for i in range(18000)]  # an hour, dense
    out = svg.timeline([svg.Lane("X", "ok", 0.5, marks, [(10.0, 20.0, 0.9)])], 3600.0)
    bars = out.count('class="window"')
    assert 0 < bars <= 800 and len(out) < 400_000 and out.count('class="segment"') == 1
    windows = [{"index": i, "score": s} for i, s in enumerate([0.1, 0.9, 0.5, 0.9, 0.2])]
    assert [w["index"] for w in choose_windows(windows, 3)] == [1, 2, 3]


def test_evidence_levels_and_reasons_are_shown(analysed):
    doc = json.loads(json.dumps(analysed["docs"][0]))
    # the ensemble's own words (forensics_core.evidence): the level in words and one reason per detector
    combined = doc["combined"]
    assert combined["evidence"] in ("substantial", "uncertain", "little") and combined["summary"] and combined["reasons"]
    words = Page(render_html([doc], images=False)).words
    assert combined["summary"] + "." in words
    assert all(reason in words for reason in combined["reasons"])
    # another producer's shape: a level object with its reasons and no summary
    combined.pop("summary")
    combined["evidence"] = {"level": "uncertain", "reasons": ["FAKE-VISUAL: score near its threshold"]}
    words = Page(render_html([doc], images=False)).words
    assert "Uncertain: the evidence is mixed or weak." in words and "FAKE-VISUAL: score near its threshold" in words
    assert "Images were left out of this report." in words


def test_reading_results_files(tmp_path, analysed):
    docs = analysed["docs"]
    (tmp_path / "one.json").write_text(json.dumps(docs[0]["results"][0], indent=2))
    (tmp_path / "lines.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs) + '{"media_path": "/x.mp4", "res')
    (tmp_path / "list.json").write_text(json.dumps(docs))
    assert [d.results[0]["detector_id"] for d in read_documents(tmp_path / "one.json")] == ["FAKE-VISUAL"]
    lines = read_documents(tmp_path / "lines.jsonl")
    assert len(lines) == 5 and lines[-1].problem.startswith("line 5") and lines[0].combined is not None
    assert len(read_documents(tmp_path / "list.json")) == 4
    (tmp_path / "bad.json").write_text("not json at all")
    assert "not JSON" in read_documents(tmp_path / "bad.json")[0].problem
    (tmp_path / "empty.json").write_text("\n")
    with pytest.raises(InvalidOptionsError, match="holds no results"):
        read_documents(tmp_path / "empty.json")
    with pytest.raises(InvalidOptionsError, match="cannot read"):
        read_documents(tmp_path / "missing.jsonl")


# --------------------------------------------------------------------------- the commands
CLI = '''
from forensics_core.cli import main
from forensics_core.testing import AudioFakeDetector, FakeDetector, registered

if __name__ == "__main__":
    with registered(FakeDetector, AudioFakeDetector):
        main()
'''


@pytest.fixture
def cli(tmp_path):
    (tmp_path / "report_cli_under_test.py").write_text(textwrap.dedent(CLI))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(tmp_path), os.environ.get("PYTHONPATH", "")]),
           "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()

    def run(*args, **kw):
        return subprocess.run([sys.executable, "-m", "report_cli_under_test", *map(str, args)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120, **kw)

    return run


def test_cli_analyze_report_and_report_from_scan(cli, clips, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    for name in ("speech", "silent"):
        shutil.copy(clips[name], media / clips[name].name)
    before = sorted(p.name for p in media.iterdir())
    proc = cli("analyze", media / "speech.mp4", "-m", "FAKE-VISUAL", "-o", "stride=9", "--json", "--report", tmp_path / "a.html")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["detector_id"] == "FAKE-VISUAL"  # stdout still carries the result only
    assert f"report: {tmp_path / 'a.html'}" in proc.stderr
    assert len(Page((tmp_path / "a.html").read_text()).find("img", class_="thumb")) == 8

    scan = cli("scan", media, "-m", "FAKE-VISUAL", "-m", "FAKE-AUDIO", "--output", tmp_path / "r.jsonl", "--quiet")
    assert scan.returncode == 0, scan.stderr
    rep = cli("report", tmp_path / "r.jsonl", "-o", tmp_path / "scan.html")
    assert rep.returncode == 0 and rep.stdout.startswith("report: ") and "(2 files)" in rep.stdout, rep.stderr
    page = Page((tmp_path / "scan.html").read_text())
    assert len(page.find("section", class_="file")) == 2 and len(page.find("script")) == 1
    assert len(page.find("img", class_="thumb")) == 16  # recomputed from the media
    piped = cli("report", "-", "-o", tmp_path / "stdin.html", "--no-images", input=(tmp_path / "r.jsonl").read_text())
    assert piped.returncode == 0 and Page((tmp_path / "stdin.html").read_text()).find("img", class_="thumb") == []
    bad = cli("report", tmp_path / "nothing.jsonl", "-o", tmp_path / "x.html")
    assert bad.returncode == 2 and "error [invalid_options]" in bad.stderr and not (tmp_path / "x.html").exists()
    # nothing written beside the media or left in TMPDIR
    assert sorted(p.name for p in media.iterdir()) == before and list((tmp_path / "tmp").iterdir()) == []


def test_write_html_is_atomic(tmp_path, analysed):
    out = write_html(analysed["docs"][:1], tmp_path / "r.html", images=False)
    assert out.read_text().startswith("<!DOCTYPE html>") and sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


def test_paths_as_typed_and_detectors_not_installed(analysed, tmp_path, monkeypatch):
    doc = json.loads(json.dumps(analysed["docs"][0]))
    doc["media_path"] = "speech.mp4"  # analyze keeps the path as typed; its rows hold the resolved one
    monkeypatch.chdir(tmp_path)
    page = Page(render_html([doc]))
    assert len(page.find("img", class_="thumb")) == 8 and "(moved or deleted?)" not in page.words
    doc["results"][0]["detector_id"] = "GONE-DETECTOR"
    page = Page(render_html([doc]))
    assert "No images: GONE-DETECTOR is not installed here." in page.words and page.find("img", class_="thumb") == []


def test_a_name_that_is_not_utf8_is_found_by_its_bytes(analysed, tmp_path):
    """Rows show such a name with \\xNN escapes and keep it losslessly in media_path_bytes (base64)."""
    import base64

    raw = os.fsencode(tmp_path) + b"/caf\xe9.mp4"
    shutil.copy(analysed["docs"][0]["results"][0]["media_path"], raw)
    doc = json.loads(json.dumps(analysed["docs"][0]))
    shown = str(tmp_path / "caf\\xe9.mp4")
    doc["media_path"] = shown
    for row in doc["results"]:
        row["media_path"], row["media_path_bytes"] = shown, base64.b64encode(raw).decode()
    page = Page(render_html([doc], images=False))  # OpenCV opens such names only through hardening's open_for_decoder
    assert shown in page.words and "(moved or deleted?)" not in page.words
    assert hashlib.sha256(open(raw, "rb").read()).hexdigest() in page.words

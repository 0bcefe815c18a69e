#!/usr/bin/env python
"""HTML report cost for a 10-window LIPFD-V1 analysis (issue 12's target: under 1 s and 5 MB).

One real analysis (LIPFD-V1, default options: 10 windows of 5 frames, on a 6 s 640x480
clip made with the bundled ffmpeg) is run once with the weights given (default: the
stand-in in ``$FORENSICS_TEST_WEIGHTS``); it is not timed. Then, ``--repeats`` times each:

* ``analyze --report`` path: the 10 window images offered to a capture (thumbnails made
  as the analysis would make them) + ``render_html`` from the capture: the cost the
  report adds to an analysis;
* ``forensics report`` path: ``render_html`` from the JSON alone, with an unloaded
  detector recomputing the images from the media (probe, audio, mel, frames, thumbnails);
* ``--no-images``: ``render_html(images=False)``;

and the size of each page. Times are min and median of the wall time and of the CPU time
(this process's threads plus its ffmpeg children): on a shared machine the wall time
grows with the load while the CPU time stays near what an idle machine's wall time would
be (the work is single-threaded). The load average is recorded before and after.

Usage::

    python benchmarks/bench_report.py [--weights ckpt.pth] [--repeats 5] [--json-out .bench/report.json]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

TARGET_S, TARGET_BYTES = 1.0, 5_000_000


def _stats(values: list[float]) -> dict:
    return {"min": round(min(values), 4), "median": round(statistics.median(values), 4), "n": len(values)}


def _cpu() -> float:
    """CPU seconds of this process and its waited-for children (ffmpeg)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class Timer:
    def __init__(self):
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def __enter__(self):
        self._t, self._c = time.perf_counter(), _cpu()
        return self

    def __exit__(self, *exc):
        self.wall.append(time.perf_counter() - self._t)
        self.cpu.append(_cpu() - self._c)

    def stats(self) -> dict:
        return {"wall": _stats(self.wall), "cpu": _stats(self.cpu)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=os.environ.get("FORENSICS_TEST_WEIGHTS"),
                        help="LIPFD-V1 weights (default $FORENSICS_TEST_WEIGHTS, else the cache)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--workdir", type=Path, default=ROOT / ".bench" / "report",
                        help="the clip and the analysis' JSON are kept here and reused (git-ignored)")
    args = parser.parse_args()

    from media_corpus import make_clip

    from forensics_core import get_detector, load_model
    from forensics_core.evidence_images import EvidenceImage
    from forensics_core.report import capture_evidence, render_html
    from forensics_plugins.lipfd.evidence import window_images

    load_before = os.getloadavg()
    args.workdir.mkdir(parents=True, exist_ok=True)
    clip = args.workdir / f"clip_{args.seconds:g}s.mp4"
    saved = args.workdir / f"result_{args.seconds:g}s.json"
    if not clip.exists():
        make_clip(clip, seconds=args.seconds, size=(640, 480))
    if not saved.exists() or saved.stat().st_mtime < clip.stat().st_mtime:
        print("[bench] analysing once (not timed) ...", file=sys.stderr, flush=True)
        model = load_model("LIPFD-V1", weights=args.weights, device="cpu")
        saved.write_text(json.dumps(model.analyze(clip).to_dict()))
        model.unload()
        del model
    result = json.loads(saved.read_text())
    doc = result
    # the images the analysis offers, as it offers them (full resolution, scored)
    images = [EvidenceImage(i.window_index, i.image, i.caption, score=i.score)
              for i in window_images(clip, result, None)]
    assert len(images) == 10 and images[0].image.shape == (1000, 2500, 3)

    capture_t, recompute_t, bare_t = Timer(), Timer(), Timer()
    sizes = {}
    for _ in range(args.repeats):
        with capture_t:
            with capture_evidence() as capture:
                capture.add("LIPFD-V1", clip, images)
            html = render_html([doc], capture=capture)
        sizes["capture"] = len(html.encode())

        detectors = {"LIPFD-V1": get_detector("LIPFD-V1")}  # unloaded: no weights
        with recompute_t:
            html = render_html([doc], detectors=detectors)
        sizes["recompute"] = len(html.encode())

        with bare_t:
            html = render_html([doc], images=False)
        sizes["no_images"] = len(html.encode())
    out = {
        "clip": f"{args.seconds:g} s 640x480 25 fps H.264 + AAC (tests/media_corpus.make_clip)",
        "windows": len(result["windows"]), "cpu_count": os.cpu_count(),
        "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()],
        "seconds": {"analyze_report_capture": capture_t.stats(), "report_recompute": recompute_t.stats(),
                    "no_images": bare_t.stats()},
        "bytes": sizes,
        "targets": {"seconds": TARGET_S, "bytes": TARGET_BYTES},
    }
    out["meets_target"] = {k: out["seconds"][k]["cpu"]["median"] < TARGET_S and sizes[s] < TARGET_BYTES
                           for k, s in (("analyze_report_capture", "capture"), ("report_recompute", "recompute"),
                                        ("no_images", "no_images"))}
    text = json.dumps(out, indent=2)
    print(text)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

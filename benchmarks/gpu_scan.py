#!/usr/bin/env python
"""Videos per second, end to end, for a scan of many short clips on one GPU (issue #16, item 5).

Target: at least 20 videos (10 windows each) per second on one H100. Not yet measured:
no GPU was lent when this was written (docs/performance.md says so).

It writes a stand-in checkpoint (tests/lipfd_standin.py) and ``--distinct`` different
6 s clips (testsrc2 + a sine, H.264 + AAC) into a temporary folder, links them under
``--clips`` names, loads LIPFD-V1 once, then times, from the first file opened to the
last result:

* the batched path (``forensics_plugins.lipfd.batched.analyze_many``: decoding in
  ``--workers`` processes, resizes and crops on the GPU, ``--files-per-batch`` files per
  forward) over every clip;
* the file-by-file path (``detector.analyze``) over ``--baseline`` clips;

and checks that both give the same scores (max |Δscore| over the baseline clips).
The JSON (``--out``) is rewritten after every step.

    python benchmarks/gpu_scan.py --out gpu_scan.json                           # cuda, fp16, 200 clips
    python benchmarks/gpu_scan.py --precision fp32 --files-per-batch 32 --workers 14
    python benchmarks/gpu_scan.py --device cpu --precision fp32 --clips 4 --baseline 2 --workers 1   # dry run
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_clips(folder: Path, distinct: int, total: int) -> list[Path]:
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    sources = []
    for i in range(distinct):
        path = folder / f"src_{i}.mp4"
        subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size=640x480:rate=25:duration=6,hue=h={i * 40}",
                        "-f", "lavfi", "-i", f"sine=frequency={220 + 40 * i}:beep_factor=4:sample_rate=44100:duration=6",
                        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)],
                       check=True)
        sources.append(path)
    clips = []
    for i in range(total):
        link = folder / f"clip_{i:04d}.mp4"
        os.link(sources[i % distinct], link)
        clips.append(link)
    return clips


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precision", default="fp16")
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--distinct", type=int, default=8)
    ap.add_argument("--baseline", type=int, default=20, help="clips also run file by file")
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    ap.add_argument("--files-per-batch", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=150, help="ResNet images per call (LipFD's batch_size option)")
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT / "tests"))
    from lipfd_standin import write_standin_checkpoint

    from forensics_core import DetectionResult, load_model
    from forensics_plugins.lipfd.batched import analyze_many

    report: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "torch": torch.__version__,
                    "device_name": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
                    "cpu_count": os.cpu_count()}

    def save(step: str) -> None:
        print(f"[gpu_scan] {step}: {json.dumps({k: v for k, v in report.items() if k != 'args'})}", file=sys.stderr, flush=True)
        if args.out:
            args.out.write_text(json.dumps(report, indent=1))

    def sync() -> None:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        weights = args.weights or write_standin_checkpoint(folder / "standin.pth")
        clips = make_clips(folder, args.distinct, args.clips)
        report["setup_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        det = load_model("LIPFD-V1", weights=weights, device=args.device, precision=args.precision)
        report["load_s"] = round(time.perf_counter() - t0, 1)
        opts = {"batch_size": args.batch_size}
        list(analyze_many(det, clips[:2], opts, workers=1, files_per_batch=2))  # warm-up: CUDA, cuDNN, kernels
        save("warm-up")

        sync()
        t0 = time.perf_counter()
        batched = {}
        for path, result in analyze_many(det, clips, opts, workers=args.workers, files_per_batch=args.files_per_batch):
            batched[path] = result
        sync()
        wall = time.perf_counter() - t0
        errors = [p for p, r in batched.items() if not isinstance(r, DetectionResult)]
        report["batched"] = {"videos": len(clips), "wall_s": round(wall, 2), "videos_per_s": round(len(clips) / wall, 2),
                             "errors": len(errors), "peak_gpu_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)
                             if args.device.startswith("cuda") else None}
        save("batched")

        base = clips[:args.baseline]
        sync()
        t0 = time.perf_counter()
        single = {str(p): det.analyze(p, **opts) for p in base}
        sync()
        wall = time.perf_counter() - t0
        report["file_by_file"] = {"videos": len(base), "wall_s": round(wall, 2), "videos_per_s": round(len(base) / wall, 2)}
        def scores(result) -> np.ndarray:
            return np.array(result.to_dict()["metrics"]["window_scores"])

        dev = [float(np.max(np.abs(scores(single[str(p)]) - scores(batched[str(p)]))))
               for p in base if isinstance(batched.get(str(p)), DetectionResult)]
        report["max_abs_dscore_batched_vs_single"] = max(dev) if dev else None
        report["target_videos_per_s"] = 20.0
        report["target_met"] = report["batched"]["videos_per_s"] >= 20.0
        save("file by file")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

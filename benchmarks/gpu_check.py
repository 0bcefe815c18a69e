"""GPU check for LIPFD-V1: fidelity on CUDA (fp32) and the reduced precisions, and warm timings.

Run on a machine with a CUDA GPU, from the repository root, with the project's
dependencies importable (installed, or ``PYTHONPATH=src`` plus the wheels):

    python benchmarks/gpu_check.py --out gpu_check.json

It writes the stand-in checkpoint (tests/lipfd_standin.py) to a temporary folder,
analyses the reference clip v1 with ``device="cuda"`` in fp32, bf16 and fp16 and
with two region batch sizes, and prints and saves: the largest |Δlogit| and
|Δscore| against the reference outputs, and warm per-video times per stage.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
V1 = ROOT / "tests" / "data" / "lipfd_v1"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--weights", type=Path, default=None)
    args = ap.parse_args()

    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT / "tests"))
    from lipfd_standin import write_standin_checkpoint

    from forensics_plugins.lipfd.detector import LipFDDetector

    report: dict = {"torch": torch.__version__, "cuda": torch.version.cuda, "device_name": torch.cuda.get_device_name(0), "runs": []}
    expected = json.loads((V1 / "expected.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        weights = args.weights or write_standin_checkpoint(Path(tmp) / "standin.pth")
        report["standin_seconds"] = round(time.perf_counter() - t0, 2)
        for precision, batch in (("fp32", 10), ("fp32", 50), ("bf16", 10), ("fp16", 10)):
            det = LipFDDetector()
            t0 = time.perf_counter()
            det.load(device="cuda", precision=precision, weights=weights)
            load_s = time.perf_counter() - t0
            for source in ("mp4", "wav"):
                opts = {"batch_size": batch}
                if source == "wav":
                    opts["audio_path"] = str(V1 / "v1.wav")
                times, result = [], None
                for _ in range(args.repeats if source == "mp4" else 1):
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    result = det.analyze(V1 / "v1.mp4", **opts)
                    torch.cuda.synchronize()
                    times.append(time.perf_counter() - t0)
                d = result.to_dict()
                logits = np.array([w["logit"] for w in d["windows"]])
                run = {
                    "precision": precision, "batch_size": batch, "audio": source, "load_s": round(load_s, 2),
                    "max_abs_dlogit": float(np.abs(logits - expected["logits"]).max()),
                    "max_abs_dscore": float(np.abs(np.array(d["metrics"]["window_scores"]) - expected["scores"]).max()),
                    "max_abs_dregion_w0": float(np.abs(np.array([d["windows"][0]["region_weights"][s] for s in ("full", "face", "lip")]) - expected["region_weights_w0"]).max()),
                    "first_run_s": round(times[0], 3), "warm_median_s": round(statistics.median(times[1:] or times), 3),
                    "timings_last_run": {k: round(v, 4) for k, v in d["timings"].items()},
                    "peak_gpu_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
                }
                report["runs"].append(run)
                print(json.dumps(run), flush=True)
            det.unload()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    fp32 = [r for r in report["runs"] if r["precision"] == "fp32"]
    ok = all(r["max_abs_dlogit"] <= 1e-4 and r["max_abs_dscore"] <= 2e-5 for r in fp32)
    print("fp32 fidelity on CUDA:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""What the weights checks added by issue 14 cost at load time (items 6 and 9).

Measures, on a LipFD checkpoint (default: the 1.8 GB stand-in), each in a fresh
subprocess so the page cache is the only thing shared between runs:

* ``read``: ``read_state_dict`` (weights_only, memory-mapped) + key mapping;
* ``finite``: :func:`check_finite` over every inference tensor (the NaN/inf check);
* ``sha256``: hashing the file (done once per process at load, in a thread beside it,
  unless the download record already holds it);
* ``load``: ``load_model("LIPFD-V1")``, end to end, which includes the two checks.

Reported as seconds (min and median over ``--repeats``) and as ratios to the load in
the same run, because the machine is shared and absolute times are noisy. The file is
read once first so every run sees it in the page cache (as a second analysis does).

Usage::

    python benchmarks/bench_weights_checks.py [--weights PATH] [--repeats 3] [--json-out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

STEPS = {
    "read": "from forensics_plugins.lipfd.weights import read_state_dict, to_model_keys\n"
            "t=time.perf_counter(); s=to_model_keys(read_state_dict(W)); dt=time.perf_counter()-t",
    "finite": "from forensics_plugins.lipfd.weights import read_state_dict, to_model_keys, check_finite\n"
              "s=to_model_keys(read_state_dict(W)); t=time.perf_counter(); check_finite(s, W); dt=time.perf_counter()-t",
    "sha256": "from forensics_core.weights import sha256_file\n"
              "t=time.perf_counter(); sha256_file(W, chunk=1 << 22); dt=time.perf_counter()-t",
    "load": "from forensics_core import load_model\n"
            "t=time.perf_counter(); load_model('LIPFD-V1', weights=W, device='cpu'); dt=time.perf_counter()-t",
}


def run(step: str, weights: str) -> float:
    code = f"import time\nW={weights!r}\n{STEPS[step]}\nprint(dt)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=os.environ.get("FORENSICS_TEST_WEIGHTS", "/work/scratch/lipfd_standin.pth"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json-out")
    args = ap.parse_args()
    with open(args.weights, "rb") as fh:  # into the page cache
        while fh.read(1 << 24):
            pass
    times = {step: [run(step, args.weights) for _ in range(args.repeats)] for step in STEPS}
    load = statistics.median(times["load"])
    report = {"weights": args.weights, "bytes": Path(args.weights).stat().st_size, "load_avg": os.getloadavg(),
              "steps": {step: {"min_s": round(min(v), 3), "median_s": round(statistics.median(v), 3),
                               "ratio_to_load": round(statistics.median(v) / load, 3)} for step, v in times.items()}}
    print(json.dumps(report, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()

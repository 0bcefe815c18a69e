#!/usr/bin/env python
"""LIPFD-V1 data path: memory whatever the input (issue 14), dense sampling (issue 12).

Makes its clips with the bundled ffmpeg (cheap to encode: still or synthetic
pictures at low bitrate, a tone or a beep for sound), then runs each case in a fresh
process (model loaded, one small warm-up analysis, then the measured analysis) and
reports that process's peak RSS (``os.wait4``) and the analysis' wall time:

* ``short``: 6 s, 640x480, 25 fps, spread (the baseline of every ratio);
* ``big``: 7000x7000 (49 MP, inside the 50 MP cap), 60 frames, spread;
* ``hours``: ``--hours`` (default 4, the duration cap) of 64x64 video and a modulated tone, spread;
* ``dense``: 10 minutes, 1280x720, 25 fps, ``sampling=dense`` with ``--dense-stride``
  (default 150: 100 windows, a few minutes on 2 cores; the default stride of 5 would
  run 3000 windows, about 2 hours there; a larger stride decodes more frames per
  window, so it is the harder case for the time-per-window target).

Targets: peak(big) and peak(hours) <= peak(short) + 600 MB; peak(dense) <= 1.3 x
peak(short); dense time per window <= 1.2 x spread's on the short clip.

Usage::

    python benchmarks/bench_pipeline.py --weights W [--cases short,big,hours,dense] [--json-out F]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_lipfd import _loadavg, ensure_weights, machine_info, run_measured  # noqa: E402

TARGETS = {"extra_mb": 600, "dense_rss_ratio": 1.3, "dense_time_ratio": 1.2}


def ffmpeg(args: list[str], out: Path) -> Path:
    import imageio_ffmpeg

    if out.exists() and out.stat().st_size > 0:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".part" + out.suffix)
    t0 = time.perf_counter()
    print(f"[bench] making {out.name} ...", file=sys.stderr, flush=True)
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *args, str(tmp)], check=True)
    os.replace(tmp, out)
    print(f"[bench]   {time.perf_counter() - t0:.0f} s, {out.stat().st_size / 1e6:.1f} MB", file=sys.stderr, flush=True)
    return out


def make_clips(work: Path, cases: list[str], hours: float) -> dict[str, Path]:
    beep = "sine=frequency=220:beep_factor=4:sample_rate=44100"
    clips = {"short": ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=640x480:rate=25:duration=6", "-f", "lavfi", "-i", f"{beep}:duration=6",
                              "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", "-shortest"],
                             work / "short_6s_640x480.mp4")}
    if "big" in cases:
        clips["big"] = ffmpeg(["-f", "lavfi", "-i", "color=c=0x405060:s=7000x7000:r=25:d=2.4,drawbox=x=2000:y=2000:w=3000:h=3000:"
                               "color=0xd0a080:t=fill,drawbox=x=3000:y=4800:w=1000:h=200:color=0x601010:t=fill",
                               "-f", "lavfi", "-i", "sine=frequency=220:sample_rate=16000:duration=2.4",
                               "-c:v", "libx264", "-preset", "ultrafast", "-crf", "40", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"],
                              work / "big_7000x7000_60f.mp4")
    if "hours" in cases:
        s = int(hours * 3600)
        clips["hours"] = ffmpeg(["-f", "lavfi", "-i", f"color=c=gray:s=64x64:r=25:d={s}", "-f", "lavfi",
                                 "-i", f"aevalsrc=0.3*sin(2*PI*(140+40*sin(2*PI*t/7))*t):s=16000:d={s}",
                                 "-c:v", "libx264", "-preset", "ultrafast", "-g", "250", "-c:a", "aac", "-b:a", "16k"],
                                work / f"hours_{hours:g}h_64x64.mp4")
    if "dense" in cases:
        clips["dense"] = ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=600", "-f", "lavfi", "-i", f"{beep}:duration=600",
                                 "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "250", "-c:a", "aac", "-b:a", "96k",
                                 "-shortest", "-movflags", "+faststart"],
                                work / "long_10min_1280x720.mp4")
    return clips


# ------------------------------------------------------------------------------ worker
def worker(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--worker", action="store_true")
    p.add_argument("--clip", required=True)
    p.add_argument("--warmup", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--options", default="{}")
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args(argv)
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    from forensics_core import load_model

    det = load_model("LIPFD-V1", weights=a.weights, device="cpu", precision="fp32")
    det.analyze(a.warmup, n_extract=1)  # first-call imports (scipy.signal for soxr, ...) out of the way
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    res = det.analyze(a.clip, **json.loads(a.options)).to_dict()
    wall = time.perf_counter() - t0
    print(json.dumps({"wall_s": wall, "windows": len(res["windows"]), "timings": res["timings"], "warnings": res["warnings"],
                      "score": res["score"], "segments": len(res["segments"]), "frame_count": res["media"]["frame_count"],
                      "audio_seconds": res["media"]["audio_seconds"], "rss_before_analysis": rss_before,
                      "rss_self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}), flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--worker" in argv:
        worker(argv)
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, default=Path(".bench"))
    p.add_argument("--weights", type=Path)
    p.add_argument("--cases", default="short,big,hours,dense")
    p.add_argument("--hours", type=float, default=4.0)
    p.add_argument("--dense-stride", type=int, default=150)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--timeout", type=float, default=7200.0)
    p.add_argument("--json-out", type=Path)
    args = p.parse_args(argv)
    cases = ["short"] + [c for c in args.cases.split(",") if c and c != "short"]
    work = args.workdir.resolve()
    weights, _ = ensure_weights(args.weights, work)
    clips = make_clips(work, cases, args.hours)
    options = {"short": {}, "big": {}, "hours": {}, "dense": {"sampling": "dense", "stride": args.dense_stride}}
    report: dict = {"machine": machine_info(), "args": {k: str(v) for k, v in vars(args).items()}, "cases": {}}
    for case in cases:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--clip", str(clips[case]), "--warmup", str(clips["short"]),
               "--weights", str(weights), "--options", json.dumps(options[case]), "--threads", str(args.threads)]
        print(f"[bench] {case} ({clips[case].name}, {options[case] or 'spread'}), load {_loadavg()} ...", file=sys.stderr, flush=True)
        r = run_measured(cmd, timeout=args.timeout)
        if not r["ok"]:
            print(f"[bench]   failed: {r.get('error') or r['stderr'][-1500:]}", file=sys.stderr)
            report["cases"][case] = {"error": r.get("error") or r["stderr"][-1500:]}
            continue
        d = {**r["doc"], "peak_rss": r["rss_bytes"], "load_before": r["load_before"], "load_after": r["load_after"]}
        d["wall_per_window_s"] = d["wall_s"] / d["windows"]
        report["cases"][case] = d
        print(f"[bench]   peak {d['peak_rss'] / 2**20:.0f} MiB, {d['windows']} windows in {d['wall_s']:.1f} s "
              f"({d['wall_per_window_s']:.2f} s/window)", file=sys.stderr, flush=True)
    report["verdict"] = verdict(report["cases"])
    print(json.dumps(report["verdict"], indent=2))
    out = args.json_out or (work / "bench_pipeline.json")
    out.write_text(json.dumps(report, indent=2))
    print(f"[bench] JSON written to {out}", file=sys.stderr)
    return 0


def verdict(cases: dict) -> dict:
    base = cases.get("short") or {}
    if "peak_rss" not in base:
        return {"error": "no baseline"}
    mib = 2**20
    out = {"short_peak_mib": round(base["peak_rss"] / mib), "short_s_per_window": round(base["wall_per_window_s"], 3)}
    for case in ("big", "hours"):
        c = cases.get(case) or {}
        if "peak_rss" in c:
            extra = (c["peak_rss"] - base["peak_rss"]) / mib
            out[case] = {"peak_mib": round(c["peak_rss"] / mib), "extra_mib": round(extra),
                         "target_met": extra <= TARGETS["extra_mb"] * 1e6 / mib}
    c = cases.get("dense") or {}
    if "peak_rss" in c:
        rss, per = c["peak_rss"] / base["peak_rss"], c["wall_per_window_s"] / base["wall_per_window_s"]
        out["dense"] = {"windows": c["windows"], "peak_mib": round(c["peak_rss"] / mib), "peak_ratio": round(rss, 3),
                        "s_per_window": round(c["wall_per_window_s"], 3), "time_per_window_ratio": round(per, 3),
                        "target_met": rss <= TARGETS["dense_rss_ratio"] and per <= TARGETS["dense_time_ratio"]}
    return out


if __name__ == "__main__":
    sys.exit(main())

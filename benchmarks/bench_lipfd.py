#!/usr/bin/env python
"""LipFD speed and memory, as ratios to GEMM ceilings measured in the same run (issue #16).

The machine is shared, so no absolute figure stands alone. Every warm analysis is
preceded, in the same process, by a burst that measures the GEMM ceilings
(benchmarks/ceilings.py: fp32 through MKL and through oneDNN, bf16 through oneDNN),
and the model stages' GFLOP/s are divided by the ceiling measured just before them.
Precisions and cold starts are interleaved round by round, and medians are reported.

Each measurement runs in a fresh process (peak RSS from ``os.wait4``):

* warm: load once, one first analysis, then ``--repeats`` x (ceilings, analysis);
* cold: ``forensics analyze CLIP --weights W --json`` from process start to the JSON;
* FLOPs: counted once with ``FlopCounterMode`` on the meta device (the reference work:
  every token through every block; the lean path executes 2 % less);
* with the stand-in weights on tests/data/lipfd_v1/v1.mp4: fp32 against expected.json,
  and each fast precision against fp32 (|Δscore|, |Δlogit|).

Usage::

    python benchmarks/bench_lipfd.py                       # v1.mp4, fp32 + bf16, 2 rounds
    python benchmarks/bench_lipfd.py --quick               # 1 round, 1 repeat
    python benchmarks/bench_lipfd.py --linear-backend aten # A/B: the ViT's linears through F.linear (MKL)
    python benchmarks/bench_lipfd.py --long-minutes 10     # also a 10-minute 720p clip (warm fp32)
    python benchmarks/bench_lipfd.py --device cuda --precision fp32,fp16,bf16
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TESTS = ROOT / "tests"
V1 = TESTS / "data" / "lipfd_v1"
STAGES = ("probe", "audio", "mel", "frame_decode", "window_build", "global_branch", "region_branch")
#: issue #16's targets
TARGETS = {"fp32_ratio": 0.8, "bf16_ratio": 0.8, "cold_over_warm_s": 2.5, "fp32_rss_gb": 2.2}


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _forensics_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("forensics")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "forensics_core"]


def make_clip(path: Path, *, seconds: float, size: str, fps: int = 25) -> Path:
    """testsrc2 + a beeping sine, H.264 + AAC (cached in the work folder)."""
    if path.exists() and path.stat().st_size > 0:
        return path
    import imageio_ffmpeg

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".part" + path.suffix)
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=220:beep_factor=4:sample_rate=44100:duration={seconds}",
                    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "250",
                    "-c:a", "aac", "-b:a", "96k", "-shortest", str(tmp)], check=True)
    os.replace(tmp, path)
    return path


def ensure_weights(path: Path | None, workdir: Path) -> tuple[Path, bool]:
    """(weights, is the deterministic stand-in); the stand-in is written once into ``workdir``."""
    env = os.environ.get("FORENSICS_TEST_WEIGHTS")
    if path is None and env:
        return Path(env), True
    if path is not None:
        return path, path.name in ("standin.pth", "lipfd_standin.pth")
    target = workdir / "standin.pth"
    if not target.exists():
        print(f"[bench] writing the stand-in checkpoint to {target} (1.8 GB) ...", file=sys.stderr, flush=True)
        code = ("import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
                "from lipfd_standin import write_standin_checkpoint; write_standin_checkpoint(Path(sys.argv[2]))")
        tmp = target.with_name("standin.part.pth")
        subprocess.run([sys.executable, "-c", code, str(TESTS), str(tmp)], check=True)
        os.replace(tmp, target)
    return target, True


#: runs its arguments as its only child; reports the child's peak RSS and the wall time to EOF on its stdout
_RSS_WRAPPER = r"""
import json, os, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE)
data = p.stdout.read()
t_eof = time.perf_counter()
_, status, ru = os.wait4(p.pid, 0)
sys.stdout.write(data.decode(errors="replace"))
sys.stdout.write("\n" + json.dumps({"__rss__": ru.ru_maxrss * 1024, "__wall__": t_eof - t0,
                                    "__rc__": os.waitstatus_to_exitcode(status)}) + "\n")
"""


def run_measured(cmd: list[str], *, timeout: float) -> dict:
    """``cmd`` in a fresh process: its last JSON line, wall time, peak RSS, load average around it."""
    load_before = _loadavg()
    proc = subprocess.Popen([sys.executable, "-c", _RSS_WRAPPER, *cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:  # timeout or Ctrl-C: never leave the measured process running
        os.killpg(proc.pid, 9)
        proc.communicate()
        raise
    lines = out.decode(errors="replace").strip().splitlines()
    meta = json.loads(lines[-1]) if lines else {}
    doc = None
    for line in reversed(lines[:-1]):
        if line.startswith("{"):
            try:
                doc = json.loads(line)
                break
            except json.JSONDecodeError:
                continue
    if doc is None and len(lines) > 1:  # a pretty-printed document
        try:
            doc = json.loads("\n".join(lines[:-1]))
        except json.JSONDecodeError:
            doc = None
    ok = meta.get("__rc__") == 0 and doc is not None
    return {"ok": ok, "wall_s": meta.get("__wall__"), "rss_bytes": meta.get("__rss__"), "doc": doc,
            "stderr": "" if ok else err.decode(errors="replace")[-2000:], "load_before": load_before, "load_after": _loadavg()}


# ------------------------------------------------------------------------------ workers
def worker_flops(args) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from forensics_plugins.lipfd.model import LipFDNet

    with torch.device("meta"):
        net = LipFDNet().eval()
    g = torch.empty(1, 3, 1120, 1120, device="meta")
    c = torch.empty(1, 3, 5, 3, 224, 224, device="meta")
    with torch.inference_mode():
        with FlopCounterMode(display=False) as fc:  # the reference work: every token through every block
            gf = net.encoder(net.conv1(g), cls_only_last=False)
        glob = fc.get_total_flops()
        with FlopCounterMode(display=False) as fc:
            net.backbone.heads(net.crop_features(c, 10), gf)
        region = fc.get_total_flops()
        with FlopCounterMode(display=False) as fc:
            net.global_features(g)
        lean = fc.get_total_flops()
    return {"global_per_window": glob, "region_per_window": region, "global_executed_per_window": lean}


def worker_warm(args) -> dict:
    sys.path.insert(0, str(HERE))
    import torch
    from ceilings import ceilings

    from forensics_core import load_model
    from forensics_plugins.nn.kernels import set_linear_backend

    if args.threads:
        torch.set_num_threads(args.threads)
    set_linear_backend(args.linear_backend)
    out: dict = {"threads": torch.get_num_threads(), "load_before": _loadavg()}
    t0 = time.perf_counter()
    det = load_model("LIPFD-V1", weights=args.weights, device=args.device, precision=args.precision)
    out["load_s"] = time.perf_counter() - t0
    out["precision"] = det.precision
    out["rss_after_load"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    runs = []
    for i in range(1 + args.repeats):
        ceil = ceilings(args.device, args.ceiling_seconds) if i else None
        t0 = time.perf_counter()
        d = det.analyze(args.clip, batch_size=args.batch_size).to_dict()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        runs.append({"timings": {**d["timings"], "total": time.perf_counter() - t0}, "ceilings": ceil, "load": _loadavg()})
        if i == 0:
            out.update(scores=d["metrics"]["window_scores"], logits=[w["logit"] for w in d["windows"]], score=d["score"])
    out["first"], out["runs"] = runs[0], runs[1:]
    out["rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def worker_main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--worker", required=True)
    for name in ("clip", "weights"):
        p.add_argument("--" + name)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=None, help="images per ResNet call (default: the detector's, 10 in fp32, 25 in bf16)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--ceiling-seconds", type=float, default=1.5)
    p.add_argument("--linear-backend", default="auto")
    a = p.parse_args(argv)
    print(json.dumps({"flops": worker_flops, "warm": worker_warm}[a.worker](a)), flush=True)


def _worker_cmd(**kw) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kw.pop("worker")]
    for k, v in kw.items():
        if v is not None:
            cmd += ["--" + k.replace("_", "-"), str(v)]
    return cmd


# ------------------------------------------------------------------------------ driver
def machine_info() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count()}
    try:
        text = Path("/proc/cpuinfo").read_text()
        info["cpu_model"] = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), None)
        flags = set(next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), []))
        info["cpu_flags"] = sorted(f for f in flags if f.startswith(("avx512_bf16", "avx512f", "amx", "avx2")))
        info["bf16_hw"] = bool({"avx512_bf16", "amx_bf16"} & flags)
    except OSError:
        pass
    import torch

    info["torch"] = torch.__version__
    info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def summarise_warm(d: dict, flops: dict, ref: str) -> dict:
    """Per repeat: model seconds, GFLOP/s and the ratio to the ceilings measured just before it."""
    n = len(d["scores"])
    g_fl, r_fl = flops["global_per_window"] * n / 1e9, flops["region_per_window"] * n / 1e9
    rows = []
    for r in d["runs"]:
        t = r["timings"]
        model = t["global_branch"] + t["region_branch"]
        row = {"total_s": t["total"], "model_s": model, "gflops_model": (g_fl + r_fl) / model,
               "gflops_global": g_fl / t["global_branch"], "gflops_region": r_fl / t["region_branch"],
               "ceilings": r["ceilings"]}
        for k, v in (r["ceilings"] or {}).items():
            row[f"ratio_model/{k}"] = row["gflops_model"] / v if v else None
        row["ratio_model"] = row.get(f"ratio_model/{ref}")
        row["ratio_global"] = row["gflops_global"] / r["ceilings"][ref] if r["ceilings"] and r["ceilings"].get(ref) else None
        row["ratio_region"] = row["gflops_region"] / r["ceilings"][ref] if r["ceilings"] and r["ceilings"].get(ref) else None
        row.update({s: t.get(s) for s in STAGES})
        rows.append(row)
    return {"gflop": g_fl + r_fl, "rows": rows, "first_s": d["first"]["timings"]["total"], "load_s": d["load_s"],
            "rss_bytes": d["rss_bytes"], "rss_after_load": d["rss_after_load"], "precision": d["precision"]}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--worker" in argv:
        worker_main(argv)
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", type=Path, default=Path(".bench"))
    p.add_argument("--weights", type=Path, help="default: $FORENSICS_TEST_WEIGHTS, else a stand-in written to --workdir")
    p.add_argument("--clip", type=Path, default=V1 / "v1.mp4")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default=None, help="comma list, fp32 first (default fp32,bf16 on CPU; fp32,fp16,bf16 on CUDA)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=None, help="images per ResNet call (default: the detector's, 10 in fp32, 25 in bf16)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds of (warm per precision, cold per precision)")
    p.add_argument("--repeats", type=int, default=2, help="warm analyses per worker after the first")
    p.add_argument("--ceiling-seconds", type=float, default=1.5)
    p.add_argument("--linear-backend", default="auto", choices=["auto", "aten"])
    p.add_argument("--no-cold", action="store_true")
    p.add_argument("--long-minutes", type=float, default=0.0)
    p.add_argument("--quick", action="store_true", help="1 round, 1 repeat")
    p.add_argument("--timeout", type=float, default=3600.0)
    p.add_argument("--json-out", type=Path)
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.repeats = 1, 1
    sys.path.insert(0, str(HERE))
    from ceilings import reference_ceiling

    machine = machine_info()
    if args.precision is None:
        args.precision = "fp32,fp16,bf16" if args.device.startswith("cuda") else ("fp32,bf16" if machine.get("bf16_hw") else "fp32")
    precisions = list(dict.fromkeys(["fp32", *[x.strip() for x in args.precision.split(",") if x.strip()]]))
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    weights, standin = ensure_weights(args.weights, work)
    clips = {"clip": args.clip.resolve()}
    if args.long_minutes:
        clips["long"] = make_clip(work / f"long_{args.long_minutes:g}min_1280x720.mp4", seconds=60 * args.long_minutes, size="1280x720")
    print(f"[bench] {machine.get('cpu_model')} x{machine['cpu_count']}, torch {machine['torch']}, load {_loadavg()}", file=sys.stderr)
    fl = run_measured(_worker_cmd(worker="flops"), timeout=args.timeout)
    if not fl["ok"]:
        raise SystemExit("FLOP counting failed:\n" + fl["stderr"])
    flops = fl["doc"]
    report: dict = {"machine": machine, "args": {k: str(v) for k, v in vars(args).items()}, "weights": str(weights),
                    "flops": flops, "warm": {}, "cold": {}, "rounds": []}
    common = dict(weights=weights, device=args.device, threads=args.threads or None, batch_size=args.batch_size,
                  ceiling_seconds=args.ceiling_seconds, linear_backend=args.linear_backend)
    for rnd in range(args.rounds):
        for name, clip in clips.items():
            for prec in precisions if name == "clip" else ["fp32"]:
                key = f"{name}/{prec}"
                print(f"[bench] round {rnd + 1}: warm {key} ...", file=sys.stderr, flush=True)
                r = run_measured(_worker_cmd(worker="warm", clip=clip, precision=prec, repeats=args.repeats, **common),
                                 timeout=args.timeout)
                if not r["ok"]:
                    report["warm"].setdefault(key, []).append({"error": r["stderr"]})
                    print(f"[bench]   failed: {r['stderr'][-600:]}", file=sys.stderr)
                    continue
                s = summarise_warm(r["doc"], flops, reference_ceiling(args.device, prec))
                s.update(scores=r["doc"]["scores"], logits=r["doc"]["logits"], score=r["doc"]["score"],
                         load=[r["load_before"], r["load_after"]])
                report["warm"].setdefault(key, []).append(s)
                print(f"[bench]   model {_median(x['gflops_model'] for x in s['rows']):.0f} GFLOP/s, "
                      f"ratio {_median(x['ratio_model'] for x in s['rows']):.2f}, RSS {s['rss_bytes'] / 1e9:.2f} GB", file=sys.stderr)
        if args.no_cold:
            continue
        for prec in precisions:
            print(f"[bench] round {rnd + 1}: cold {prec} ...", file=sys.stderr, flush=True)
            cmd = [*_forensics_cmd(), "analyze", str(args.clip), "--weights", str(weights), "--json", "-q",
                   "--device", args.device, "--precision", prec]
            r = run_measured(cmd, timeout=args.timeout)
            entry = {"wall_s": r["wall_s"], "rss_bytes": r["rss_bytes"], "load": [r["load_before"], r["load_after"]]}
            if not r["ok"]:
                entry = {"error": r["stderr"]}
            report["cold"].setdefault(prec, []).append(entry)
    out = args.json_out or (work / "bench_result.json")
    out.write_text(json.dumps(report, indent=1))  # the raw runs first: a summary bug must not lose them
    report["summary"] = summarise(report, precisions, standin and args.clip.resolve() == (V1 / "v1.mp4").resolve())
    out.write_text(json.dumps(report, indent=1))
    print_report(report, precisions)
    print(f"\n[bench] JSON written to {out}")
    return 0


def summarise(rep: dict, precisions: list[str], fidelity: bool) -> dict:
    out: dict = {}
    for key, runs in rep["warm"].items():
        ok = [r for r in runs if "error" not in r]
        rows = [row for r in ok for row in r["rows"]]
        if not rows:
            continue
        ceil_names = sorted({k for row in rows for k in (row["ceilings"] or {})})
        out[key] = {
            "n": len(rows), "total_s": _median(r["total_s"] for r in rows), "model_s": _median(r["model_s"] for r in rows),
            "stages": {s: _median(r[s] for r in rows) for s in STAGES},
            "gflops_model": _median(r["gflops_model"] for r in rows), "gflops_global": _median(r["gflops_global"] for r in rows),
            "gflops_region": _median(r["gflops_region"] for r in rows),
            "ceilings": {c: _median((r["ceilings"] or {}).get(c) for r in rows) for c in ceil_names},
            "ratio_model": _median(r["ratio_model"] for r in rows), "ratio_global": _median(r["ratio_global"] for r in rows),
            "ratio_region": _median(r["ratio_region"] for r in rows),
            "ratio_model_all": {c: _median(r.get(f"ratio_model/{c}") for r in rows) for c in ceil_names},
            "rss_bytes": max(r["rss_bytes"] for r in ok), "load_s": _median(r["load_s"] for r in ok),
            "first_s": _median(r["first_s"] for r in ok), "precision": ok[0]["precision"],
        }
    for prec, runs in rep["cold"].items():
        ok = [r for r in runs if "error" not in r]
        if ok:
            out[f"cold/{prec}"] = {"wall_s": _median(r["wall_s"] for r in ok), "rss_bytes": max(r["rss_bytes"] for r in ok), "n": len(ok)}
    ref = next((r for r in rep["warm"].get("clip/fp32", []) if "error" not in r), None)
    if ref and fidelity:
        exp = json.loads((V1 / "expected.json").read_text())
        out["fidelity_fp32"] = {"dlogit": max(abs(a - b) for a, b in zip(ref["logits"], exp["logits"])),
                                "dscore": max(abs(a - b) for a, b in zip(ref["scores"], exp["scores"]))}
    for prec in precisions[1:]:
        fast = [r for r in rep["warm"].get(f"clip/{prec}", []) if "error" not in r]
        if ref and fast:
            ds = [abs(a - b) for r in fast for a, b in zip(r["scores"], ref["scores"])]
            dl = [abs(a - b) for r in fast for a, b in zip(r["logits"], ref["logits"])]
            out[f"deviation/{prec}"] = {"max_dscore": max(ds), "mean_dscore": sum(ds) / len(ds), "max_dlogit": max(dl),
                                        "d_mean_score": abs(fast[0]["score"] - ref["score"])}
    return out


def _f(x, fmt="{:.2f}") -> str:
    return "-" if x is None else fmt.format(x)


def print_report(rep: dict, precisions: list[str]) -> None:
    m, s, fl = rep["machine"], rep["summary"], rep["flops"]
    print(f"\nLipFD benchmark: {m.get('cpu_model')} x{m.get('cpu_count')}, torch {m.get('torch')} ({m.get('torch_cpu_capability')}), "
          f"bf16 hardware: {m.get('bf16_hw')}{', GPU ' + m['gpu'] if m.get('gpu') else ''}")
    print(f"work per window: {fl['global_per_window'] / 1e9:.1f} GFLOP global + {fl['region_per_window'] / 1e9:.1f} region "
          f"(reference forward; the lean path executes {fl['global_executed_per_window'] / 1e9:.1f} global)")
    cols = [k for k in s if k.startswith(("clip/", "long/"))]
    print("\nwarm, medians over every repeat of every round; each ratio divides by the ceiling measured just before")
    print(f"{'':<22}" + "".join(f"{c:>16}" for c in cols))
    lines = [(st + " s", lambda d, st=st: _f(d["stages"][st], "{:.3f}")) for st in STAGES] + [
        ("total s", lambda d: _f(d["total_s"], "{:.2f}")), ("model s", lambda d: _f(d["model_s"], "{:.2f}")),
        ("model GFLOP/s", lambda d: _f(d["gflops_model"], "{:.0f}")),
        ("  global / region", lambda d: f"{d['gflops_global']:.0f}/{d['gflops_region']:.0f}"),
        ("ceiling fp32 MKL", lambda d: _f(d["ceilings"].get("fp32_mkl") or d["ceilings"].get("fp32"), "{:.0f}")),
        ("ceiling fp32 oneDNN", lambda d: _f(d["ceilings"].get("fp32_onednn"), "{:.0f}")),
        ("ceiling bf16 oneDNN", lambda d: _f(d["ceilings"].get("bf16_onednn") or d["ceilings"].get("bf16"), "{:.0f}")),
        ("model / own ceiling", lambda d: _f(d["ratio_model"])),
        ("  global / region", lambda d: f"{_f(d['ratio_global'])}/{_f(d['ratio_region'])}"),
        ("model / fp32 MKL", lambda d: _f(d["ratio_model_all"].get("fp32_mkl"))),
        ("first analysis s", lambda d: _f(d["first_s"])), ("load s", lambda d: _f(d["load_s"])),
        ("peak RSS GB (worker)", lambda d: _f(d["rss_bytes"] / 1e9)), ("repeats", lambda d: str(d["n"])),
    ]
    for label, fn in lines:
        print(f"{label:<22}" + "".join(f"{fn(s[c]):>16}" for c in cols))
    for prec in precisions:
        c = s.get(f"cold/{prec}")
        if c:
            print(f"cold {prec}: {c['wall_s']:.2f} s (median of {c['n']}), peak RSS {c['rss_bytes'] / 1e9:.2f} GB")
    if "fidelity_fp32" in s:
        print(f"fidelity fp32 vs expected.json: max |dlogit| {s['fidelity_fp32']['dlogit']:.1e}, "
              f"max |dscore| {s['fidelity_fp32']['dscore']:.1e}")
    for prec in precisions[1:]:
        d = s.get(f"deviation/{prec}")
        if d:
            print(f"{prec} vs fp32: max |dscore| {d['max_dscore']:.1e} (mean {d['mean_dscore']:.1e}), max |dlogit| {d['max_dlogit']:.1e}")
    print("\ntargets (issue #16)")
    w32, wbf, c32, cbf = s.get("clip/fp32"), s.get("clip/bf16"), s.get("cold/fp32"), s.get("cold/bf16")

    def verdict(ok):
        return "met" if ok else "NOT met"

    if w32:
        print(f"  fp32 model stages / oneDNN fp32 ceiling: {_f(w32['ratio_model'])} (>= {TARGETS['fp32_ratio']}): "
              f"{verdict((w32['ratio_model'] or 0) >= TARGETS['fp32_ratio'])}")
    if wbf:
        print(f"  bf16 model stages / bf16 ceiling: {_f(wbf['ratio_model'])} (>= {TARGETS['bf16_ratio']}): "
              f"{verdict((wbf['ratio_model'] or 0) >= TARGETS['bf16_ratio'])}")
    if c32 and cbf:
        print(f"  bf16 peak RSS {cbf['rss_bytes'] / 1e9:.2f} GB vs fp32 {c32['rss_bytes'] / 1e9:.2f} GB (cold CLI): "
              f"{verdict(cbf['rss_bytes'] <= c32['rss_bytes'])}")
    if c32 and w32:
        print(f"  cold {c32['wall_s']:.2f} s vs warm {w32['total_s']:.2f} + {TARGETS['cold_over_warm_s']} s: "
              f"{verdict(c32['wall_s'] <= w32['total_s'] + TARGETS['cold_over_warm_s'])}")
        print(f"  fp32 peak RSS {c32['rss_bytes'] / 1e9:.2f} GB (cold CLI) vs {TARGETS['fp32_rss_gb']} GB: "
              f"{verdict(c32['rss_bytes'] <= TARGETS['fp32_rss_gb'] * 1e9)}")


if __name__ == "__main__":
    sys.exit(main())

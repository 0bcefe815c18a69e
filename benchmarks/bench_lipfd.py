#!/usr/bin/env python
"""LipFD speed and memory benchmark (issue #4).

Makes two synthetic clips with the bundled ffmpeg (a 6 s 640x480 clip and a long
1280x720 one, default 10 minutes, H.264 + AAC), then measures, each in a fresh
subprocess so that peak RSS is per run and cold start is honest:

* cold start: process start -> JSON on stdout, through the real CLI
  (``forensics analyze CLIP --weights W --json``), with the child's peak RSS;
* warm: model loaded once, one untimed-for-the-median first analysis, then
  ``--repeats`` analyses; per-stage times (the result's ``timings`` plus the wall
  ``total``), min and median; peak RSS of the worker;
* achieved GFLOP/s of the model stages (FLOPs counted once with
  ``torch.utils.flop_counter.FlopCounterMode`` on the meta device) and their ratio
  to a matmul peak measured in the same worker with the same thread count;
* fast precision (bf16 on CPU, fp16/bf16 on CUDA): its per-window deviation from
  the fp32 scores of the same clip;
* long/short ratios of warm time and peak RSS;
* with the stand-in weights, a fidelity row: fp32 on tests/data/lipfd_v1/v1.mp4
  against expected.json.

Usage::

    python benchmarks/bench_lipfd.py                  # everything (tens of minutes on 2 cores)
    python benchmarks/bench_lipfd.py --quick          # short clip, one repeat, fp32 only
    python benchmarks/bench_lipfd.py --precision fp32,bf16 --json-out .bench/result.json
    python benchmarks/bench_lipfd.py --device cuda --precision fp32,fp16,bf16

The machine is shared: every figure is reported as min and median over repeats,
and the load average before and after each run is recorded.
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

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
REF_DIR = TESTS / "data" / "lipfd_v1"
STAGES = ("probe", "audio", "mel", "frame_decode", "window_build", "global_branch", "region_branch")
#: the issue's figures, for the target column
RELEASED = {"warm_s": 17.0, "load_s": 6.0, "cold_s": 25.0, "rss_gb": 4.2}
TARGETS = {"warm_ratio": 0.85, "cold_ratio": 0.5, "fast_speedup": 2.5, "fast_dscore": 0.01,
           "rss_gb": 2.5, "long_time_ratio": 1.3, "long_rss_ratio": 1.2}


# ------------------------------------------------------------------------------ helpers
def _python() -> str:
    return sys.executable


def _forensics_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("forensics")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "forensics_core"]


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _stats(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"min": None, "median": None, "n": 0}
    return {"min": min(values), "median": statistics.median(values), "n": len(values)}


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def make_clip(path: Path, *, seconds: float, size: str, fps: int = 25, gop: int = 250) -> Path:
    """testsrc2 + a beeping sine (so the mel image is not flat), H.264 yuv420p + AAC 44.1 kHz."""
    if path.exists() and path.stat().st_size > 0:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".part" + path.suffix)
    cmd = [
        ffmpeg_exe(), "-nostdin", "-v", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=220:beep_factor=4:sample_rate=44100:duration={seconds}",
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", str(gop),
        "-c:a", "aac", "-b:a", "96k", "-shortest", "-movflags", "+faststart", str(tmp),
    ]
    t0 = time.perf_counter()
    print(f"[bench] making {path.name} ({seconds:g} s, {size}) ...", file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True)
    os.replace(tmp, path)
    print(f"[bench]   done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    return path


def ensure_weights(path: Path | None, workdir: Path) -> tuple[Path, bool]:
    """(weights path, is the deterministic stand-in)."""
    if path is not None:
        return path, path.resolve() == (workdir / "standin.pth").resolve() or path.name == "standin.pth"
    target = workdir / "standin.pth"
    if not target.exists():
        print(f"[bench] writing the stand-in checkpoint to {target} (1.8 GB) ...", file=sys.stderr, flush=True)
        code = ("import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
                "from lipfd_standin import write_standin_checkpoint; write_standin_checkpoint(Path(sys.argv[2]))")
        tmp = target.with_name("standin.part.pth")
        subprocess.run([_python(), "-c", code, str(TESTS), str(tmp)], check=True)
        os.replace(tmp, target)
    return target, True


def _parse_doc(text: str):
    """The JSON document in ``text``: the whole text, else its last line that parses."""
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


#: Runs its arguments as its only child and reports that child's peak RSS (``os.wait4``)
#: and the wall time from just before the fork to EOF on the child's stdout.
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
    """Run ``cmd`` in a fresh process: its JSON output, wall (fork -> EOF on stdout), peak RSS."""
    load_before = _loadavg()
    proc = subprocess.Popen([_python(), "-c", _RSS_WRAPPER, *cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the wrapper and the measured process (its own session)
        out, err = proc.communicate()
        return {"ok": False, "error": f"timed out after {timeout:.0f} s", "stderr": err.decode(errors="replace")[-2000:]}
    except BaseException:  # Ctrl-C: do not leave the measured process running in its own session
        os.killpg(proc.pid, 9)
        raise
    text = out.decode(errors="replace").rstrip()
    body, _, last = text.rpartition("\n")
    try:
        meta = json.loads(last)
    except json.JSONDecodeError:
        meta = {}
    doc = _parse_doc(body)
    rc = meta.get("__rc__", proc.returncode)
    return {"ok": rc == 0 and doc is not None, "rc": rc, "wall_s": meta.get("__wall__"), "rss_bytes": meta.get("__rss__"),
            "doc": doc, "stderr": err.decode(errors="replace")[-2000:], "load_before": load_before, "load_after": _loadavg()}


# ------------------------------------------------------------------------------ workers
def worker_flops(args) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from forensics_plugins.lipfd.model import LipFDNet

    with torch.device("meta"):
        net = LipFDNet().eval()
    g = torch.empty(1, 3, 1120, 1120, device="meta")
    c = torch.empty(1, 3, args.window_len, 3, 224, 224, device="meta")
    with torch.inference_mode():
        # the work as the reference defines it: open_clip's own forward, every token through every block
        with FlopCounterMode(display=False) as fc:
            gf = net.encoder(net.conv1(g))
        glob = fc.get_total_flops()
        with FlopCounterMode(display=False) as fc:
            net.backbone.heads(net.crop_features(c, 10), gf)
        region = fc.get_total_flops()
        # what the lean inference path executes (the last CLIP block computes the class token only)
        with FlopCounterMode(display=False) as fc:
            net.global_features(g)
        lean = fc.get_total_flops()
    return {"global_per_window": glob, "region_per_window": region, "global_executed_per_window": lean}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def matmul_peak(dtype_name: str, device: str, seconds: float) -> dict:
    """Best GFLOP/s of a single ``torch.mm`` call, over sizes up to 2048 (8192 on CUDA) and
    both B layouts (``a @ b``; ``a @ b.T``, which is what ``nn.Linear`` runs), each size
    timed call by call for its share of ``seconds``: the best call is the machine's peak
    even when other processes take the cores now and then. A size is not tried when one
    call of the previous size took over a second (emulated bf16 can be 100x slower)."""
    import torch

    dtype = getattr(torch, {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[dtype_name])
    sizes = (2048, 4096, 8192) if device.startswith("cuda") else (512, 1024, 2048)
    best, rows = {"gflops": 0.0}, []
    budget = seconds / (len(sizes) * 2)
    for n in sizes:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        slow = False
        for layout, bb in (("a@b", b), ("a@b.T", b.t())):
            torch.mm(a, bb)  # warm-up
            _sync(device)
            top, calls, t_end = 0.0, 0, time.perf_counter() + budget
            while True:
                t = time.perf_counter()
                torch.mm(a, bb)
                _sync(device)
                dt = time.perf_counter() - t
                calls += 1
                top = max(top, 2 * n**3 / dt / 1e9)
                slow = slow or dt > 1.0
                if time.perf_counter() > t_end or slow:
                    break
            rows.append({"n": n, "layout": layout, "gflops": top, "calls": calls})
            if top > best["gflops"]:
                best = {"gflops": top, "n": n, "layout": layout}
        if slow:
            break
    best["all"] = rows
    return best


def worker_warm(args) -> dict:
    t_start = time.perf_counter()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    out: dict = {"threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
                 "load_before": _loadavg()}
    peak_dtypes = ["fp32"] + ([args.precision] if args.precision != "fp32" else [])
    if not args.no_peak:
        out["matmul_peak"] = {p: matmul_peak(p, args.device, args.peak_seconds) for p in peak_dtypes}
    from forensics_core import load_model

    t0 = time.perf_counter()
    det = load_model("LIPFD-V1", weights=args.weights, device=args.device, precision=args.precision)
    out["load_s"] = time.perf_counter() - t0
    out["rss_after_load"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    opts = {"batch_size": args.batch_size}
    if args.audio:
        opts["audio_path"] = args.audio
    runs = []
    for i in range(1 + args.repeats):
        t0 = time.perf_counter()
        res = det.analyze(args.clip, **opts)
        _sync(args.device)
        wall = time.perf_counter() - t0
        d = res.to_dict()
        if d.get("status", "ok") not in ("ok", None) and d.get("error"):
            raise RuntimeError(f"analysis failed: {d.get('error')}")
        runs.append({"timings": {**d["timings"], "total": wall}, "load": _loadavg()})
        if i == 0:
            out["scores"] = d["metrics"]["window_scores"]
            out["logits"] = [w["logit"] for w in d["windows"]]
            out["score"] = d["score"]
            out["frames_analyzed"] = d.get("frames_analyzed")
            out["warnings"] = d.get("warnings")
            out["media"] = {k: d.get("media", {}).get(k) for k in ("frame_count", "fps", "width", "height", "duration")}
    out["first"] = runs[0]["timings"]
    warm = runs[1:] or runs
    out["warm"] = {k: _stats([r["timings"].get(k) for r in warm]) for k in (*STAGES, "total")}
    out["warm_runs"] = [r["timings"] for r in warm]
    out["rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out["process_s"] = time.perf_counter() - t_start
    out["load_after"] = _loadavg()
    return out


def worker_main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--worker", required=True)
    p.add_argument("--clip")
    p.add_argument("--audio")
    p.add_argument("--weights")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--window-len", type=int, default=5)
    p.add_argument("--peak-seconds", type=float, default=4.0)
    p.add_argument("--no-peak", action="store_true")
    a = p.parse_args(argv)
    fn = {"flops": worker_flops, "warm": worker_warm}[a.worker]
    print(json.dumps(fn(a)), flush=True)


# ------------------------------------------------------------------------------ driver
def _worker_cmd(args, **kw) -> list[str]:
    cmd = [_python(), str(Path(__file__).resolve()), "--worker", kw.pop("worker")]
    for k, v in kw.items():
        if v is None or v is False:
            continue
        flag = "--" + k.replace("_", "-")
        cmd += [flag] if v is True else [flag, str(v)]
    return cmd


def machine_info() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count()}
    try:
        text = Path("/proc/cpuinfo").read_text()
        for line in text.splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        flags = set()
        for line in text.splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
        info["cpu_flags"] = sorted(f for f in flags if f.startswith(("avx", "fma", "amx")) or f in ("f16c",))
        info["bf16_hw"] = bool({"avx512_bf16", "amx_bf16"} & flags)
    except OSError:
        pass
    try:
        info["mem_total_gb"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except Exception as exc:  # noqa: BLE001 - the report says why
        info["torch_error"] = repr(exc)
    return info


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--worker" in argv:
        worker_main(argv)
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", type=Path, default=Path(".bench"), help="clips, stand-in weights, results (git-ignored)")
    p.add_argument("--weights", type=Path, help="checkpoint (.pth) or safetensors; default: the stand-in in --workdir")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default=None, help="comma list; first must be fp32 (default fp32,bf16 on CPU; fp32,fp16,bf16 on CUDA)")
    p.add_argument("--threads", type=int, default=0, help="torch threads in the warm worker (0 = torch's default)")
    p.add_argument("--batch-size", type=int, default=10, help="region-branch images per call")
    p.add_argument("--repeats", type=int, default=3, help="warm analyses after the first, per clip")
    p.add_argument("--fast-repeats", type=int, default=None,
                   help="warm repeats for bf16/fp16 (default: --repeats on CUDA or with bf16 hardware, else 0: "
                        "emulated bf16 takes minutes per clip)")
    p.add_argument("--fidelity-all", action="store_true", help="also check the fast precisions against expected.json")
    p.add_argument("--cold-repeats", type=int, default=2, help="cold CLI runs per clip")
    p.add_argument("--long-minutes", type=float, default=10.0)
    p.add_argument("--peak-seconds", type=float, default=6.0, help="seconds spent measuring each matmul peak")
    p.add_argument("--quick", action="store_true", help="short clip only, fp32 only, 1 repeat, 1 cold run")
    p.add_argument("--no-long", action="store_true")
    p.add_argument("--no-cold", action="store_true")
    p.add_argument("--fast-long", action="store_true", help="also run the fast precisions on the long clip")
    p.add_argument("--safetensors", action="store_true", help="also time a cold start from a `forensics convert`ed safetensors file")
    p.add_argument("--timeout", type=float, default=3600.0, help="per subprocess, seconds")
    p.add_argument("--json-out", type=Path)
    args = p.parse_args(argv)

    if args.precision is None:
        args.precision = "fp32" if args.quick else ("fp32,fp16,bf16" if args.device.startswith("cuda") else "fp32,bf16")
    precisions = [x.strip() for x in args.precision.split(",") if x.strip()]
    if precisions[0] != "fp32":
        precisions.insert(0, "fp32")
    if args.quick:
        args.repeats, args.cold_repeats, args.no_long = min(args.repeats, 1), min(args.cold_repeats, 1), True
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    weights, standin = ensure_weights(args.weights, work)
    clips = {"short": make_clip(work / "short_6s_640x480.mp4", seconds=6, size="640x480")}
    if not args.no_long:
        minutes = args.long_minutes
        clips["long"] = make_clip(work / f"long_{minutes:g}min_1280x720.mp4", seconds=60 * minutes, size="1280x720")

    machine = machine_info()
    if args.fast_repeats is None:
        args.fast_repeats = args.repeats if (args.device.startswith("cuda") or machine.get("bf16_hw")) else 0
    report: dict = {"machine": machine, "args": {k: str(v) for k, v in vars(args).items()},
                    "weights": str(weights), "standin": standin, "clips": {k: str(v) for k, v in clips.items()}}
    print(f"[bench] machine: {report['machine'].get('cpu_model')} x{report['machine'].get('cpu_count')}, "
          f"torch {report['machine'].get('torch')} ({report['machine'].get('torch_cpu_capability')}), load {_loadavg()}", file=sys.stderr)

    fl = run_measured(_worker_cmd(args, worker="flops"), timeout=args.timeout)
    if not fl["ok"]:
        print(fl["stderr"], file=sys.stderr)
        raise SystemExit("FLOP counting failed")
    flops = fl["doc"]
    report["flops"] = flops
    per_window = flops["global_per_window"] + flops["region_per_window"]

    # warm runs
    warm: dict = {}
    for name, clip in clips.items():
        for prec in precisions:
            if name == "long" and prec != "fp32" and not args.fast_long:
                continue
            print(f"[bench] warm {name} {prec} ...", file=sys.stderr, flush=True)
            r = run_measured(_worker_cmd(args, worker="warm", clip=clip, weights=weights, device=args.device, precision=prec,
                                         threads=args.threads or None, batch_size=args.batch_size,
                                         repeats=args.repeats if prec == "fp32" else args.fast_repeats,
                                         peak_seconds=args.peak_seconds), timeout=args.timeout)
            if not r["ok"]:
                print(f"[bench]   failed: {r.get('error') or r['stderr'][-800:]}", file=sys.stderr)
                warm[f"{name}/{prec}"] = {"error": r.get("error") or r["stderr"][-800:]}
                continue
            d = r["doc"]
            n_win = len(d["scores"])
            model_s = d["warm"]["global_branch"]["min"] + d["warm"]["region_branch"]["min"]
            gfl = per_window * n_win / 1e9
            d["gflop"] = gfl
            d["achieved_gflops_model"] = gfl / model_s
            d["achieved_gflops_total"] = gfl / d["warm"]["total"]["min"]
            d["achieved_gflops_global"] = flops["global_per_window"] * n_win / 1e9 / d["warm"]["global_branch"]["min"]
            d["achieved_gflops_region"] = flops["region_per_window"] * n_win / 1e9 / d["warm"]["region_branch"]["min"]
            pk = (d.get("matmul_peak") or {}).get(prec, {}).get("gflops")
            d["ratio_to_peak_model"] = d["achieved_gflops_model"] / pk if pk else None
            d["ratio_to_peak_total"] = d["achieved_gflops_total"] / pk if pk else None
            d["wrapper_rss_bytes"] = r.get("rss_bytes")
            warm[f"{name}/{prec}"] = d
            print(f"[bench]   total min {d['warm']['total']['min']:.2f} s, model {d['achieved_gflops_model']:.0f} GFLOP/s, "
                  f"peak RSS {d['rss_bytes'] / 2**30:.2f} GiB, load {d.get('load_after')}", file=sys.stderr, flush=True)
    report["warm"] = warm

    # fidelity against the reference vector (stand-in weights only)
    if standin and (REF_DIR / "expected.json").exists():
        exp = json.loads((REF_DIR / "expected.json").read_text())
        fid = {}
        for prec in precisions if args.fidelity_all else ["fp32"]:
            r = run_measured(_worker_cmd(args, worker="warm", clip=REF_DIR / "v1.mp4", weights=weights, device=args.device,
                                         precision=prec, threads=args.threads or None, batch_size=args.batch_size, repeats=0,
                                         no_peak=True), timeout=args.timeout)
            if not r["ok"]:
                fid[prec] = {"error": r.get("error") or r["stderr"][-800:]}
                continue
            d = r["doc"]
            fid[prec] = {"dlogit": max(abs(a - b) for a, b in zip(d["logits"], exp["logits"])),
                         "dscore": max(abs(a - b) for a, b in zip(d["scores"], exp["scores"])),
                         "total_s": d["first"]["total"]}
        report["fidelity"] = fid

    # fast precision deviation
    dev = {}
    for key, d in warm.items():
        name, prec = key.split("/")
        ref = warm.get(f"{name}/fp32")
        if prec == "fp32" or "error" in d or not ref or "error" in ref:
            continue
        ds = [abs(a - b) for a, b in zip(d["scores"], ref["scores"])]
        dl = [abs(a - b) for a, b in zip(d["logits"], ref["logits"])]
        dev[key] = {"max_dscore": max(ds), "mean_dscore": sum(ds) / len(ds), "max_dlogit": max(dl),
                    "d_mean_score": abs(d["score"] - ref["score"]),
                    "speedup_total": ref["warm"]["total"]["min"] / d["warm"]["total"]["min"],
                    "speedup_model": (ref["warm"]["global_branch"]["min"] + ref["warm"]["region_branch"]["min"])
                    / (d["warm"]["global_branch"]["min"] + d["warm"]["region_branch"]["min"])}
    report["fast_deviation"] = dev

    # cold starts through the CLI
    cold: dict = {}
    if not args.no_cold:
        sources = [("pth", weights)]
        if args.safetensors:
            st = work / (weights.stem + ".safetensors")
            if not st.exists():
                subprocess.run([*_forensics_cmd(), "convert", "LIPFD-V1", str(weights), str(st)], check=True)
            sources.append(("safetensors", st))
        for name, clip in clips.items():
            for src, wpath in sources:
                if name == "long" and src != "pth":
                    continue
                runs = []
                for _ in range(args.cold_repeats):
                    print(f"[bench] cold {name} fp32 ({src}) ...", file=sys.stderr, flush=True)
                    cmd = [*_forensics_cmd(), "analyze", str(clip), "--weights", str(wpath), "--json", "-q",
                           "--device", args.device, "--precision", "fp32"]
                    r = run_measured(cmd, timeout=args.timeout)
                    if r.get("rc") != 0:
                        runs.append({"error": r.get("error") or r["stderr"][-800:]})
                        continue
                    runs.append({"wall_s": r["wall_s"], "rss_bytes": r.get("rss_bytes"), "load_before": r["load_before"],
                                 "load_after": r["load_after"]})
                    print(f"[bench]   {r['wall_s']:.2f} s, {r.get('rss_bytes', 0) / 2**30:.2f} GiB", file=sys.stderr, flush=True)
                ok = [x for x in runs if "error" not in x]
                cold[f"{name}/{src}"] = {"runs": runs, "wall_s": _stats([x["wall_s"] for x in ok]),
                                         "rss_bytes": _stats([x["rss_bytes"] for x in ok])}
    report["cold"] = cold

    # long vs short
    ratios = {}
    s, lg = warm.get("short/fp32"), warm.get("long/fp32")
    if s and lg and "error" not in s and "error" not in lg:
        ratios["warm_time"] = lg["warm"]["total"]["min"] / s["warm"]["total"]["min"]
        ratios["warm_time_median"] = lg["warm"]["total"]["median"] / s["warm"]["total"]["median"]
        ratios["warm_rss"] = lg["rss_bytes"] / s["rss_bytes"]
    cs, cl = cold.get("short/pth"), cold.get("long/pth")
    if cs and cl and cs["wall_s"]["min"] and cl["wall_s"]["min"]:
        ratios["cold_time"] = cl["wall_s"]["min"] / cs["wall_s"]["min"]
        ratios["cold_rss"] = cl["rss_bytes"]["min"] / cs["rss_bytes"]["min"]
    report["long_vs_short"] = ratios

    print_table(report)
    out = args.json_out or (work / "bench_result.json")
    out.write_text(json.dumps(report, indent=2))
    print(f"\n[bench] JSON written to {out}")
    return 0


def _f(x, fmt="{:.2f}") -> str:
    return "-" if x is None else fmt.format(x)


def print_table(rep: dict) -> None:
    m = rep["machine"]
    print(f"\nLipFD benchmark: {m.get('cpu_model')} x{m.get('cpu_count')} cores, {m.get('mem_total_gb')} GB, "
          f"torch {m.get('torch')} ({m.get('torch_cpu_capability')}), bf16 hardware: {m.get('bf16_hw')}"
          + (f", GPU {m['gpu']}" if m.get("gpu") else ""))
    fl = rep["flops"]
    print(f"model: {fl['global_per_window'] / 1e9:.1f} GFLOP global + {fl['region_per_window'] / 1e9:.1f} GFLOP region per window "
          f"(FlopCounterMode on the reference forward; the lean path executes {fl['global_executed_per_window'] / 1e9:.1f} GFLOP global); "
          "GFLOP/s below count the reference work")
    cols = [k for k in rep["warm"] if "error" not in rep["warm"][k]]
    if cols:
        print("\nwarm per-stage seconds, min / median over the repeats after the first analysis")
        print(f"{'stage':<15}" + "".join(f"{c:>22}" for c in cols))
        for st in (*STAGES, "total"):
            row = f"{st:<15}"
            for c in cols:
                s = rep["warm"][c]["warm"][st]
                row += f"{_f(s['min'], '{:.3f}'):>11}/{_f(s['median'], '{:.3f}'):<10}"
            print(row)
        rows = [
            ("first analysis s", lambda d: _f(d["first"]["total"])),
            ("model load s", lambda d: _f(d["load_s"])),
            ("peak RSS GiB", lambda d: _f(d["rss_bytes"] / 2**30)),
            ("RSS after load", lambda d: _f(d["rss_after_load"] / 2**30)),
            ("GFLOP", lambda d: _f(d["gflop"], "{:.0f}")),
            ("GFLOP/s model", lambda d: _f(d["achieved_gflops_model"], "{:.1f}")),
            ("GFLOP/s global", lambda d: _f(d["achieved_gflops_global"], "{:.1f}")),
            ("GFLOP/s region", lambda d: _f(d["achieved_gflops_region"], "{:.1f}")),
            ("GFLOP/s total", lambda d: _f(d["achieved_gflops_total"], "{:.1f}")),
            ("mm peak GFLOP/s", lambda d: _f(((d.get("matmul_peak") or {}).get(d.get("_prec", "fp32")) or {}).get("gflops"), "{:.1f}")),
            ("model/peak", lambda d: _f(d["ratio_to_peak_model"])),
            ("total/peak", lambda d: _f(d["ratio_to_peak_total"])),
            ("threads", lambda d: str(d["threads"])),
        ]
        for c in cols:
            rep["warm"][c]["_prec"] = c.split("/")[1]
        for label, fn in rows:
            print(f"{label:<15}" + "".join(f"{fn(rep['warm'][c]):>22}" for c in cols))
        for c in cols:
            rep["warm"][c].pop("_prec", None)
        peaks = {c: rep["warm"][c].get("matmul_peak") for c in cols}
        print("matmul peaks (same worker, same threads): " + "; ".join(
            f"{c}: " + ", ".join(f"{p} {v['gflops']:.1f} GFLOP/s (n={v.get('n')}, {v.get('layout')})" for p, v in (pk or {}).items())
            for c, pk in peaks.items()))
    for c, d in rep["warm"].items():
        if "error" in d:
            print(f"warm {c}: FAILED: {d['error'][-300:]}")
    if rep.get("fidelity"):
        print("\nfidelity on tests/data/lipfd_v1/v1.mp4 (stand-in weights) vs expected.json")
        for prec, f in rep["fidelity"].items():
            print(f"  {prec}: " + ("FAILED " + f["error"][-200:] if "error" in f else
                                   f"max |dlogit| {f['dlogit']:.2e}, max |dscore| {f['dscore']:.2e}"))
    if rep.get("fast_deviation"):
        print("\nfast precision vs fp32 (same clip)")
        for k, v in rep["fast_deviation"].items():
            print(f"  {k}: max |dscore| {v['max_dscore']:.2e} (mean {v['mean_dscore']:.2e}), max |dlogit| {v['max_dlogit']:.2e}, "
                  f"speedup total {v['speedup_total']:.2f}x, model {v['speedup_model']:.2f}x")
    if rep.get("cold"):
        print("\ncold start (process start -> JSON, `forensics analyze --json`), fp32")
        for k, v in rep["cold"].items():
            print(f"  {k}: wall min {_f(v['wall_s']['min'])} / median {_f(v['wall_s']['median'])} s, "
                  f"peak RSS min {_f((v['rss_bytes']['min'] or 0) / 2**30)} GiB (n={v['wall_s']['n']})")
    if rep.get("long_vs_short"):
        print("\nlong / short: " + ", ".join(f"{k} {v:.2f}" for k, v in rep["long_vs_short"].items()))
    # targets
    print("\ntargets (issue #4; 'released' figures are the issue's, measured on another machine)")
    s = rep["warm"].get("short/fp32") or {}
    if "warm" in s:
        t = s["warm"]["total"]["min"]
        print(f"  fp32 warm 6 s clip {t:.2f} s vs {TARGETS['warm_ratio']} x {RELEASED['warm_s']} = {TARGETS['warm_ratio'] * RELEASED['warm_s']:.1f} s: "
              f"{'met' if t <= TARGETS['warm_ratio'] * RELEASED['warm_s'] else 'NOT met'}")
        print(f"  fp32 peak RSS {s['rss_bytes'] / 2**30:.2f} GiB (warm worker) vs {TARGETS['rss_gb']} GB: "
              f"{'met' if s['rss_bytes'] <= TARGETS['rss_gb'] * 1e9 else 'NOT met'}")
    cs = (rep.get("cold") or {}).get("short/pth")
    if cs and cs["wall_s"]["min"]:
        lim = TARGETS["cold_ratio"] * RELEASED["cold_s"]
        print(f"  cold start {cs['wall_s']['min']:.2f} s vs {lim:.1f} s: {'met' if cs['wall_s']['min'] <= lim else 'NOT met'}; "
              f"CLI peak RSS {cs['rss_bytes']['min'] / 2**30:.2f} GiB")
    for k, v in (rep.get("fast_deviation") or {}).items():
        ok = v["speedup_total"] >= TARGETS["fast_speedup"] and v["max_dscore"] <= TARGETS["fast_dscore"]
        print(f"  fast {k}: {v['speedup_total']:.2f}x, max |dscore| {v['max_dscore']:.1e}: {'met' if ok else 'NOT met'}")
    r = rep.get("long_vs_short") or {}
    if "warm_time" in r:
        print(f"  long/short time {r['warm_time']:.2f} (<= {TARGETS['long_time_ratio']}), "
              f"RSS {r['warm_rss']:.2f} (<= {TARGETS['long_rss_ratio']}): "
              f"{'met' if r['warm_time'] <= TARGETS['long_time_ratio'] and r['warm_rss'] <= TARGETS['long_rss_ratio'] else 'NOT met'}")


if __name__ == "__main__":
    sys.exit(main())

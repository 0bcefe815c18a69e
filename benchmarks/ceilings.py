"""GEMM ceilings of this machine, measured now: what every model figure is divided by.

On a shared machine an absolute GFLOP/s says little; a ratio to a ceiling measured
seconds before, in the same process and with the same threads, says how close the
code runs to what the cores give it at that moment. Ceilings (best single call over
a few GEMM shapes the models run, each timed call by call):

* ``fp32_mkl``: ``torch.addmm`` (what ``F.linear`` runs; MKL's sgemm on x86 CPUs);
* ``fp32_onednn``: oneDNN's brgemm through ``torch.ops.mkldnn._linear_pointwise``, the
  better of plain weights and weights prepacked into oneDNN's layout;
* ``bf16_onednn``: the same in bf16 (emulated, and slow, on CPUs without AVX512-BF16/AMX);
* on CUDA: ``torch.mm`` in fp32 (TF32 off), bf16 and fp16.

    python benchmarks/ceilings.py            # prints the ceilings as JSON
"""
from __future__ import annotations

import json
import time

#: (M, K, N): the ViT-L/14 MLP layers on 10 windows of 257 tokens, and a square GEMM
CPU_SHAPES = ((2570, 1024, 4096), (2570, 4096, 1024), (2048, 2048, 2048))
CUDA_SHAPES = ((4096, 4096, 4096), (8192, 8192, 8192))


def _best(fn, flops: float, seconds: float, sync=lambda: None) -> float:
    fn()
    sync()
    top, end = 0.0, time.perf_counter() + seconds
    while True:
        t = time.perf_counter()
        fn()
        sync()
        dt = time.perf_counter() - t
        top = max(top, flops / dt / 1e9)
        if time.perf_counter() > end or dt > 1.0:
            return top


def cpu_ceilings(seconds: float = 1.5) -> dict[str, float]:
    """Best GFLOP/s per kernel, ``seconds`` spent on each kernel (split over the shapes)."""
    import torch

    lp = getattr(torch.ops.mkldnn, "_linear_pointwise", None)
    out = {"fp32_mkl": 0.0, "fp32_onednn": 0.0, "bf16_onednn": 0.0}
    share = seconds / len(CPU_SHAPES)
    g = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for M, K, N in CPU_SHAPES:
            x, w, b = torch.randn(M, K, generator=g), torch.randn(N, K, generator=g) / K**0.5, torch.randn(N, generator=g)
            flops = 2.0 * M * K * N
            out["fp32_mkl"] = max(out["fp32_mkl"], _best(lambda: torch.addmm(b, x, w.t()), flops, share))
            if lp is not None:  # plain weights, and weights prepacked into oneDNN's layout: the better of the two
                wp = torch.ops.mkldnn._reorder_linear_weight(w, M)
                out["fp32_onednn"] = max(out["fp32_onednn"], _best(lambda: lp(x, w, b, "none", [], ""), flops, share / 2),
                                         _best(lambda: lp(x, wp, b, "none", [], ""), flops, share / 2))
                xb, wb, bb = x.bfloat16(), w.bfloat16(), b.bfloat16()
                wbp = torch.ops.mkldnn._reorder_linear_weight(wb, M)
                out["bf16_onednn"] = max(out["bf16_onednn"], _best(lambda: lp(xb, wb, bb, "none", [], ""), flops, share / 2),
                                         _best(lambda: lp(xb, wbp, bb, "none", [], ""), flops, share / 2))
    return {k: round(v, 1) for k, v in out.items()}


def cuda_ceilings(seconds: float = 1.5, device: str = "cuda") -> dict[str, float]:
    import torch

    out = {}
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
            best = 0.0
            for n, _, _ in CUDA_SHAPES:
                a = torch.randn(n, n, device=device, dtype=dtype)
                b = torch.randn(n, n, device=device, dtype=dtype)
                best = max(best, _best(lambda: torch.mm(a, b), 2.0 * n**3, seconds / len(CUDA_SHAPES),
                                       lambda: torch.cuda.synchronize(device)))
            out[name] = round(best, 1)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    return out


def ceilings(device: str = "cpu", seconds: float = 1.5) -> dict[str, float]:
    return cuda_ceilings(seconds, device) if device.startswith("cuda") else cpu_ceilings(seconds)


#: which ceiling a precision's model figure is divided by
def reference_ceiling(device: str, precision: str) -> str:
    if device.startswith("cuda"):
        return precision
    return "bf16_onednn" if precision == "bf16" else "fp32_onednn"


if __name__ == "__main__":
    import torch

    print(json.dumps({"threads": torch.get_num_threads(), **ceilings()}, indent=1))

"""Which kernel runs a linear layer, and handing mapped weight pages back.

On x86 CPUs torch's ``F.linear`` runs fp32 through MKL's sgemm, which on AMD
processors takes its AVX2 path: about half of what oneDNN's AVX-512 brgemm
reaches on the same cores (docs/performance.md). :func:`linear` sends inference
calls on the CPU to oneDNN (``torch.ops.mkldnn._linear_pointwise``) with the
activation or residual add fused; everything else (CUDA, autograd, other dtypes,
a torch without the op) goes through ``F.linear``. Both compute the same function
up to float rounding.

:func:`release_mapped_pages` lets a loader that has just copied or converted a
tensor read from a memory-mapped checkpoint hand that tensor's pages back, so a
converted copy never sits in memory next to its source.
"""
from __future__ import annotations

import ctypes
import functools
import sys

import torch
import torch.nn.functional as F

#: "auto": oneDNN for CPU inference where it can run, else F.linear; "aten": always F.linear (A/B benchmarks)
_LINEAR_BACKEND = ["auto"]


def set_linear_backend(name: str) -> str:
    """Choose the CPU linear kernel ("auto" or "aten"); returns the previous choice."""
    if name not in ("auto", "aten"):
        raise ValueError(f"unknown linear backend {name!r}; use 'auto' or 'aten'")
    previous, _LINEAR_BACKEND[0] = _LINEAR_BACKEND[0], name
    return previous


@functools.lru_cache(maxsize=None)
def _onednn_linear_op():
    """``torch.ops.mkldnn._linear_pointwise`` when this torch has it and oneDNN is usable, else None."""
    if not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
        return None
    op = getattr(torch.ops.mkldnn, "_linear_pointwise", None)
    return op if op is not None and hasattr(op, "binary") else None


@functools.lru_cache(maxsize=None)
def _onednn_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _use_onednn(x: torch.Tensor, weight: torch.Tensor) -> bool:
    if _LINEAR_BACKEND[0] != "auto" or x.device.type != "cpu" or x.dtype != weight.dtype:
        return False
    if x.dtype != torch.float32 and not (x.dtype == torch.bfloat16 and _onednn_bf16()):
        return False
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        return False
    return _onednn_linear_op() is not None


def _rows(x: torch.Tensor) -> torch.Tensor:
    x2 = x.reshape(-1, x.shape[-1])
    return x2 if x2.is_contiguous() else x2.contiguous()


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *, silu: bool = False) -> torch.Tensor:
    """``x @ weight.T + bias``, then SiLU when ``silu`` (fused into the GEMM on oneDNN)."""
    if _use_onednn(x, weight):
        y = _onednn_linear_op()(_rows(x), weight, bias, "swish" if silu else "none", [], "")
        return y.view(*x.shape[:-1], y.shape[-1])
    y = F.linear(x, weight, bias)
    if silu:
        y = F.silu(y, inplace=not (torch.is_grad_enabled() and y.requires_grad))
    return y


def linear_add(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, residual: torch.Tensor) -> torch.Tensor:
    """``residual + (x @ weight.T + bias)`` as a new tensor (the add fused into the GEMM on oneDNN)."""
    if _use_onednn(x, weight) and residual.dtype == x.dtype:
        y = _onednn_linear_op().binary(_rows(x), _rows(residual), weight, bias, "add")
        return y.view(*residual.shape[:-1], y.shape[-1])
    return residual + F.linear(x, weight, bias)


# ------------------------------------------------------------------------------ mapped pages
_MADV_DONTNEED = 4
_PAGE = 4096


def _private_file_mappings() -> list[tuple[int, int]]:
    """(start, end) of this process's private, file-backed mappings (``/proc/self/maps``)."""
    spans = []
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as fh:
            for line in fh:
                parts = line.split(None, 5)
                if len(parts) == 6 and parts[1].endswith("p") and parts[5].startswith("/"):
                    lo, hi = parts[0].split("-")
                    spans.append((int(lo, 16), int(hi, 16)))
    except OSError:
        return []
    return spans


def release_mapped_pages(tensors) -> int:
    """Drop the resident pages of ``tensors`` that lie in a private file mapping (an mmap'd
    checkpoint); returns the bytes released. Linux only; elsewhere a no-op.

    Contract: the caller no longer needs these tensors' contents. A page it never wrote
    is re-read from the file if it is touched again, so even a stray later read stays
    correct (a page it wrote would read back the file's bytes); memory that is not
    file-backed is never touched.
    """
    if not sys.platform.startswith("linux"):
        return 0
    spans = _private_file_mappings()
    if not spans:
        return 0
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        madvise = libc.madvise
    except (OSError, AttributeError):
        return 0
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    released = 0
    for t in tensors:
        if t is None or t.device.type != "cpu" or t.is_mkldnn or t.numel() == 0 or not t.is_contiguous():
            continue
        lo = t.data_ptr()
        hi = lo + t.numel() * t.element_size()
        if not any(s <= lo and hi <= e for s, e in spans):
            continue
        start = -(-lo // _PAGE) * _PAGE
        end = hi // _PAGE * _PAGE
        if end > start and madvise(ctypes.c_void_p(start), end - start, _MADV_DONTNEED) == 0:
            released += end - start
    return released

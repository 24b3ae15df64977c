"""L2 norms that neither underflow nor overflow: a gradient that is non-zero in its own dtype has a
positive, finite, correct norm; a gradient that is exactly 0 has norm 0.

The naive ``vector_norm`` of a float32 tensor squares in float32: entries below ~1e-19 square to 0
(a 129-block MLP with shortcuts scaled by 0.5 has ||dE/dx_0|| ~ 7e-40, read as exactly 0) and
entries above ~1e19 square to inf. Here:

- float16, bfloat16 and float32 tensors are reduced with float64 accumulation: every square of a
  float32 number (2e-90 .. 1.2e77) is an exact, normal float64, so the sum is exact to float64
  rounding (relative error <= n * eps64). On an accelerator this is one fused
  ``torch._foreach_norm(..., dtype=float64)`` per input dtype. On the CPU that call converts the
  whole tensor to float64 first and costs ~15x a float32 norm (benchmarks/bench_norms.py), while
  torch's float32 CPU norm accumulates in float32 (relative error 2.6e-3 on 3.8e7 entries, same
  script): there a tensor of 2^16 entries or more is cut into chunks of 2^21 entries spread over
  torch's intra-op thread count (resdiag/metrics/threads.py); each chunk is converted to float64
  2^18 entries at a time (exact) and summed by BLAS ddot with BLAS held to one thread per worker,
  or, where threadpoolctl cannot hold it, by numpy's ``einsum('i,i->', x, x, dtype=float64)`` (it
  casts in small buffers; 1.04-1.4x slower). The chunks' sums are added in a fixed order, so the
  bits do not depend on the thread count: ~1.4x the float32 norm's cost on 2 threads. A smaller
  tensor is reduced by torch (its conversion is cheap, numpy's call is not);
- float64 tensors are first scaled by a power of two (exact) so that max |x| is in [1/2, 1), then
  the norm is scaled back: ||x|| = 2^e ||x / 2^e||, the classical scaled 2-norm (LAPACK's dnrm2
  idea, Blue 1978, "A portable Fortran program to find the Euclidean norm of a vector");
- a NaN entry gives NaN and an inf entry (no NaN) gives inf, as in the naive norm;
- a sparse tensor (``nn.Embedding(sparse=True)``'s gradient) is reduced over the entries it stores,
  a COO tensor's repeated indices summed first (``coalesce``): the norm of its dense form.

Results are float64 tensors on the input's device; nothing is synchronised with the host.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import numpy as np

import torch
from torch import Tensor

from resdiag.metrics.threads import map_threads, one_blas_thread

_NARROW = (torch.float16, torch.bfloat16, torch.float32)


def l2_norm(t: Tensor) -> Tensor:
    """||t||_2 of the flattened tensor, float64, without under- or overflow (see the module).
    The probes call it once per boundary inside backward hooks, so it takes the shortest path."""
    t = _stored_values(t.detach())
    if t.dtype in _NARROW:
        return _cpu_norms([t])[0] if t.numel() >= _SMALL and t.device.type == "cpu" else _foreach([t])[0]
    return l2_norms([t])[0]


def l2_norms(ts: Sequence[Tensor]) -> list[Tensor]:
    """``l2_norm`` of each tensor; tensors of a dtype narrower than float64 that share a device
    and a dtype go through one fused ``torch._foreach_norm`` call (grouped as ``clip_grad_norm_``
    groups them: on CUDA one tensor of another dtype in the list, a bfloat16 activation gradient
    under autocast beside float32 parameter gradients, sends the whole call down its slow path of
    one kernel per tensor). The Monitor calls it on every gradient and weight of a model per
    recorded step: one pass, no per-tensor ``detach`` (the reductions run under ``no_grad``)."""
    if any(t.layout is not torch.strided for t in ts):  # sparse gradients (Embedding(sparse=True))
        ts = [_stored_values(t) for t in ts]
    out: list[Tensor | None] = [None] * len(ts)
    groups: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    with torch.no_grad():
        for i, t in enumerate(ts):
            dtype = t.dtype
            if dtype in _NARROW:
                groups.setdefault((t.device, dtype), []).append(i)
            elif dtype == torch.float64:
                out[i] = _scaled_norm(t)
            else:  # integer or bool gradients do not occur; complex: |z| entries
                out[i] = _scaled_norm(t.abs().to(torch.float64) if t.is_complex() else t.to(torch.float64))
        for (device, _), idx in groups.items():
            tensors = [ts[i] for i in idx]
            norms = _cpu_norms(tensors) if device.type == "cpu" else _foreach(tensors)
            for i, n in zip(idx, norms, strict=True):
                out[i] = n
    return out  # type: ignore[return-value]


def _stored_values(t: Tensor) -> Tensor:
    """The entries a sparse tensor holds (a COO tensor's duplicates summed first: ``coalesce``),
    whose norm is the tensor's; a strided tensor itself."""
    if t.layout is torch.strided:
        return t
    return (t.coalesce() if t.layout is torch.sparse_coo else t).values()


def _foreach(ts: list[Tensor]) -> list[Tensor]:
    foreach = getattr(torch, "_foreach_norm", None)
    if foreach is not None:
        try:
            return list(foreach(ts, 2, dtype=torch.float64))
        except (TypeError, RuntimeError):  # a torch without the dtype argument
            pass
    return [torch.linalg.vector_norm(t, dtype=torch.float64) for t in ts]


_SMALL = 1 << 16  # below this many entries torch's float64 conversion costs less than numpy's call


def _cpu_norms(ts: list[Tensor]) -> list[Tensor]:
    """float64-accumulated norms of CPU float32/float16/bfloat16 tensors (see the module)."""
    small: list[int] = []
    large: list[int] = []
    for i, t in enumerate(ts):
        (small if t.numel() < _SMALL else large).append(i)
    out: list[Tensor | float] = [0.0] * len(ts)
    if small:
        for i, n in zip(small, _foreach([ts[i] for i in small]), strict=True):
            out[i] = n
    if large:
        # numpy has no bfloat16: its float32 copy is exact
        flat = [(ts[i].float() if ts[i].dtype == torch.bfloat16 else ts[i]).detach().reshape(-1).numpy()
                for i in large]
        sums = _sums_of_squares(flat)
        for i, n in zip(large, torch.tensor(sums, dtype=torch.float64).sqrt().unbind(), strict=True):
            out[i] = n
    return out  # type: ignore[return-value]


_CHUNK = 1 << 21  # entries per task when the work is spread over threads
_SUB = 1 << 18  # entries converted to float64 at a time by the dot path: 2 MiB, cache-resident
_BUFFERS = threading.local()


def _sums_of_squares(arrays: list[np.ndarray]) -> list[float]:
    """sum(a * a) of each array in float64, in fixed chunks spread over torch's intra-op thread
    count (resdiag/metrics/threads.py); the chunks of an array are added in order, so the result
    does not depend on the number of threads."""
    chunks = [(k, a[s:s + _CHUNK]) for k, a in enumerate(arrays) for s in range(0, a.size, _CHUNK)]
    with one_blas_thread() as single:
        fn = _sum_of_squares_dot if single else _sum_of_squares_einsum
        if sum(a.size for a in arrays) <= _CHUNK:  # one chunk's work: handing it to a thread costs more
            parts = [fn(c) for _, c in chunks]
        else:
            parts = map_threads(fn, [c for _, c in chunks])
    sums = [0.0] * len(arrays)
    for (k, _), v in zip(chunks, parts, strict=True):
        sums[k] += v
    return sums


def _sum_of_squares_dot(a: np.ndarray) -> float:
    """sum(a * a) in float64: 2^18 entries at a time converted exactly to float64 in this thread's
    buffer, then BLAS ddot (products of converted float32 values are exact in float64; the sum
    rounds as float64 does). For BLAS held to one thread: on 2 cores, ResNet-18's gradients and weights
    in 16.7 ms against einsum's 22.9; a 3.8e7-entry tensor 1.04x (benchmarks/bench_norms.py)."""
    buf = getattr(_BUFFERS, "buf", None)
    if buf is None:
        buf = _BUFFERS.buf = np.empty(_SUB)
    total = 0.0
    for s in range(0, a.size, _SUB):
        part = buf[:min(_SUB, a.size - s)]
        np.copyto(part, a[s:s + _SUB])
        total += float(np.dot(part, part))
    return total


def _sum_of_squares_einsum(a: np.ndarray) -> float:
    """sum(a * a) in float64 by numpy's einsum, which casts in its own small buffers (no BLAS)."""
    return float(np.einsum("i,i->", a, a, dtype=np.float64))


def _scaled_norm(t: Tensor) -> Tensor:
    if t.numel() == 0:
        return torch.zeros((), dtype=torch.float64, device=t.device)
    amax = t.abs().amax()
    finite = torch.isfinite(amax) & (amax > 0)
    mantissa, exponent = torch.frexp(torch.where(finite, amax, 1.0))
    scaled = torch.linalg.vector_norm(torch.ldexp(t, -exponent))
    # amax == 0 -> 0; amax inf -> inf; NaN anywhere -> NaN (amax propagates NaN)
    return torch.where(finite, torch.ldexp(scaled, exponent), amax)


def all_reduce_norms(norms: list[Tensor | None]) -> list[Tensor | None]:
    """Under an initialised torch.distributed with several processes: the norms of the global batch,
    sqrt(sum_r ||g_r||^2) / world_size (DDP averages the ranks' gradients), the same on every rank;
    None stays None. Every rank must pass the same entries in the same order."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return norms
    present = [n for n in norms if n is not None]
    if not present:
        return norms
    squares = torch.stack(present).square()  # float64: no under- or overflow of any float32 norm
    dist.all_reduce(squares, op=dist.ReduceOp.SUM)
    combined = iter(squares.sqrt() / dist.get_world_size())
    return [next(combined) if n is not None else None for n in norms]

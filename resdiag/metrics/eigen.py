"""Eigenvalues of symmetric positive semi-definite matrices (Grams), the way resdiag takes them, and
the singular values of weight matrices from them (`singular_values`).

On a CPU, numpy's LAPACK and BLAS: the Gram A^T A of one buffer is a BLAS syrk (half the flops of a
general matmul), summed in fixed pieces, and the pieces and the eigenvalue problems of a batch are
split over resdiag's worker threads with BLAS on one thread each (resdiag/metrics/threads.py).
Elsewhere (CUDA), torch's. Every eigenvalue comes from the same LAPACK syevd call either way;
benchmarks/bench_rank.py ("gram eigenvalues") times both against torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from resdiag.metrics.threads import map_threads, one_blas_thread, workers


def gram_eigenvalues(x: Tensor) -> Tensor:
    """Eigenvalues (..., min(b, f)) of the smaller Gram of x (..., b, f), descending, clamped >= 0.

    They are the squared singular values of x, with absolute error ~ eps * s_max^2.
    """
    return gram_eigenvalues_many([x])[0]


def gram_eigenvalues_many(xs: Sequence[Tensor]) -> list[Tensor]:
    """``gram_eigenvalues`` of each batch, the CPU float64 ones together (`_gram_eigenvalues_numpy`):
    a network's weights come in one batch per matrix shape, and a shape with one or three matrices
    left a worker idle when each batch was spread over the workers on its own."""
    out: list[Tensor | None] = [None] * len(xs)
    cpu = [i for i, x in enumerate(xs) if x.device.type == "cpu" and x.dtype == torch.float64]
    for i, lam in zip(cpu, _gram_eigenvalues_numpy([xs[i] for i in cpu]) if cpu else [], strict=True):
        out[i] = lam
    for i, x in enumerate(xs):
        if out[i] is None:
            out[i] = symmetric_eigenvalues(x @ x.mT if x.shape[-1] >= x.shape[-2] else x.mT @ x)
    return out  # type: ignore[return-value]


def symmetric_eigenvalues(gram: Tensor) -> Tensor:
    """Eigenvalues of each symmetric matrix of a batch (..., n, n), descending, clamped >= 0 (a Gram
    is positive semi-definite; a negative eigenvalue is rounding). LAPACK syevd either way: numpy's
    on a CPU (faster than torch's there, see `_gram_eigenvalues_numpy`), torch's elsewhere."""
    if gram.device.type == "cpu" and gram.dtype == torch.float64:
        return torch.from_numpy(_eigvalsh_numpy(gram.detach().numpy())[..., ::-1].copy()).clamp(min=0)
    return torch.linalg.eigvalsh(gram).flip(-1).clamp(min=0)


SV_METHODS = ("svd", "gram")
_EPS64 = torch.finfo(torch.float64).eps


def singular_values(mats: Tensor, method: str = "svd") -> Tensor:
    """Singular values of each matrix of a batch (..., m, n): (..., min(m, n)), float64, descending.

    method "svd": torch.linalg.svdvals (LAPACK gesdd), on the tall orientation (faster, same
    values). method "gram": s = sqrt(eigvalsh(A^T A)) of the tall A, in float64, 3-5x faster for
    wide matrices; a matrix with s_min < sqrt(sqrt(eps)) s_max (~1e-4: ill-conditioned, rank
    deficient) is redone with svdvals, so every s_k keeps a relative error below ~1e-7 (1e-9
    measured on a spectrum graded down to 1e-4) and small singular values (numerical rank) are
    LAPACK's. Cost of "gram": one device sync for that check.
    A matrix with a NaN or inf entry gets NaN singular values instead of an error. Each matrix is
    scaled by a power of two (exact) before, and back after: any finite scale works.
    """
    return singular_values_many([mats], method)[0]


def singular_values_many(batches: Sequence[Tensor], method: str = "svd") -> list[Tensor]:
    """``singular_values`` of each batch; with "gram", the eigenvalue work of all of them at once
    (``gram_eigenvalues_many``: no worker idles while another batch has work)."""
    if method not in SV_METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(SV_METHODS)}")
    prepared = []
    for mats in batches:
        mats = mats.to(torch.float64)
        if mats.shape[-1] > mats.shape[-2]:
            mats = mats.mT
        amax = mats.abs().amax((-2, -1))  # NaN or inf exactly when the matrix has such an entry
        finite = amax.isfinite()
        if not finite.all():
            mats = torch.where(finite[..., None, None], mats, 0.0)
            amax = torch.where(finite, amax, 0.0)
        # each matrix times 2^-e, amax = m 2^e (exact): max |entry| in [1/2, 1), so no square of the
        # Gram over- or underflows (float64 weights at 1e-170 read rank 0, at 1e170 raised)
        mantissa, exponent = torch.frexp(amax)
        shift = torch.where(mantissa > 0, exponent, 0)
        mats = torch.ldexp(mats, -shift[..., None, None])
        prepared.append((mats, finite, shift))
    if method == "svd":
        values = [torch.linalg.svdvals(mats) for mats, *_ in prepared]
    else:
        values = []
        for (mats, *_), lam in zip(prepared, gram_eigenvalues_many([m for m, *_ in prepared]), strict=True):
            s = lam.sqrt()
            redo = lam[..., -1] < _EPS64**0.5 * lam[..., 0]
            if redo.any():
                s[redo] = torch.linalg.svdvals(mats[redo])
            values.append(s)
    return [torch.where(finite[..., None], torch.ldexp(s, shift[..., None]), torch.nan)
            for (_, finite, shift), s in zip(prepared, values, strict=True)]


_SPLIT_FROM = 64  # smaller matrices: one batched call costs less than the threads' hand-off


def _eigvalsh_numpy(grams: np.ndarray) -> np.ndarray:
    """np.linalg.eigvalsh of a batch (..., n, n), the matrices spread over resdiag's worker threads
    with BLAS on one thread each (`_eigvalsh_many`)."""
    flat = grams.reshape(-1, *grams.shape[-2:])
    with one_blas_thread() as single:  # held in the serial case too: the same bits for any thread count
        return _eigvalsh_many([flat], single)[0].reshape(grams.shape[:-1])


def _eigvalsh_many(grams: list[np.ndarray], single: bool) -> list[np.ndarray]:
    """np.linalg.eigvalsh of each batch (k, n, n), ascending, one task a matrix, on resdiag's
    workers the largest first (`_largest_first`; in this thread where BLAS is not held to one
    thread, ``single`` False): the tridiagonal reduction inside syevd is matrix-vector work that
    BLAS's own threads barely speed up (12 Grams of 768x768: 0.30 s against 0.42 s for one batched
    call, 2 cores). A batch of matrices smaller than 64 is one task: one call costs less than the
    hand-offs. Each matrix is solved by the same LAPACK call on one BLAS thread, whatever the number
    of workers, so the eigenvalues do not depend on it."""
    tasks = [(j, i) for j, g in enumerate(grams)
             for i in ([None] if g.shape[-1] < _SPLIT_FROM else range(g.shape[0]))]

    def eig(task: tuple[int, int | None]) -> np.ndarray:
        return np.linalg.eigvalsh(grams[task[0]] if task[1] is None else grams[task[0]][task[1]])

    lam = dict(zip(tasks, _largest_first(eig, tasks, lambda t: grams[t[0]].shape[-1] ** 3, single),
                   strict=True))
    out = []
    for j, g in enumerate(grams):
        if g.shape[-1] < _SPLIT_FROM:
            out.append(lam[(j, None)])
        else:
            rows = [lam[(j, i)] for i in range(g.shape[0])]
            out.append(np.stack(rows) if rows else np.zeros((0, g.shape[-1])))
    return out


_PIECE = 8192  # the inner dimension of a Gram is summed in pieces of this many: tasks for the workers


def _gram_eigenvalues_numpy(xs: list[Tensor]) -> list[Tensor]:
    """`gram_eigenvalues` of CPU float64 batches with numpy. The Gram A A^T of one buffer is a BLAS
    syrk (half the flops of torch's general matmul), taken in pieces of at most 8192 along the inner
    dimension (a fixed split, summed in a fixed order: the same sums for any thread count); the
    pieces of every batch, then the eigenvalue problems of every batch, one matrix each, are spread
    over resdiag's workers together with BLAS on one thread each, the largest first. So no BLAS
    thread pool is left spinning after the call to slow the training step that follows it on a
    small machine, and no worker waits while another has work. GPT-2-small's 50 matrices: 3.55 s
    against torch's 7.16 s on 2 cores (benchmarks/bench_rank.py, "gram eigenvalues"); ResNet-18's 21
    weights in 12 shapes: 0.22 s when each shape was spread on its own (benchmarks/bench_rank.py)."""
    arrays = []
    for x in xs:
        b, f = x.shape[-2:]
        a = x.detach().reshape(-1, b, f).numpy()
        arrays.append(a.transpose(0, 2, 1) if f < b else a)  # the Gram of the smaller side: a a^T
    tasks = [(j, i, s) for j, a in enumerate(arrays) for i in range(a.shape[0])
             for s in range(0, a.shape[-1], _PIECE)]

    def piece(task: tuple[int, int, int]) -> np.ndarray:
        j, i, s = task
        m = arrays[j][i, :, s:s + _PIECE]
        return m @ m.T  # one buffer, transposed: numpy calls syrk

    def cost(task: tuple[int, int, int]) -> int:
        n, inner = arrays[task[0]].shape[-2:]
        return n * n * min(_PIECE, inner - task[2])

    with one_blas_thread() as single:
        parts = dict(zip(tasks, _largest_first(piece, tasks, cost, single), strict=True))
        grams = [np.zeros((a.shape[0], a.shape[1], a.shape[1])) for a in arrays]
        for j, i, s in tasks:  # in task order: fixed sums
            grams[j][i] += parts[(j, i, s)]
        lams = _eigvalsh_many(grams, single)
    return [torch.from_numpy(lam[..., ::-1].copy()).clamp(min=0).reshape(*x.shape[:-2], lam.shape[-1])
            for x, lam in zip(xs, lams, strict=True)]


def _largest_first(fn, tasks: list, cost, single: bool) -> list:
    """``[fn(t) for t in tasks]``, run on resdiag's workers the costliest first (so that the last
    task to start is a small one), or in this thread where BLAS is not held to one thread."""
    if not single:  # several multithreaded BLAS calls at once contend
        return [fn(t) for t in tasks]
    order = sorted(range(len(tasks)), key=lambda k: -cost(tasks[k]))
    done = map_threads(fn, [tasks[k] for k in order])
    out: list = [None] * len(tasks)
    for k, r in zip(order, done, strict=True):
        out[k] = r
    return out

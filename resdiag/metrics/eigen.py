"""Eigenvalues of symmetric positive semi-definite matrices (Grams), the way resdiag takes them.

On a CPU, numpy's LAPACK and BLAS: the Gram A^T A of one buffer is a BLAS syrk (half the flops of a
general matmul), summed in fixed pieces, and the pieces and the eigenvalue problems of a batch are
split over resdiag's worker threads with BLAS on one thread each (resdiag/metrics/threads.py).
Elsewhere (CUDA), torch's. Every eigenvalue comes from the same LAPACK syevd call either way;
benchmarks/bench_rank.py ("gram eigenvalues") times both against torch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from resdiag.metrics.threads import map_threads, one_blas_thread, workers


def gram_eigenvalues(x: Tensor) -> Tensor:
    """Eigenvalues (..., min(b, f)) of the smaller Gram of x (..., b, f), descending, clamped >= 0.

    They are the squared singular values of x, with absolute error ~ eps * s_max^2.
    """
    if x.device.type == "cpu" and x.dtype == torch.float64:
        return _gram_eigenvalues_numpy(x)
    gram = x @ x.mT if x.shape[-1] >= x.shape[-2] else x.mT @ x
    return symmetric_eigenvalues(gram)


def symmetric_eigenvalues(gram: Tensor) -> Tensor:
    """Eigenvalues of each symmetric matrix of a batch (..., n, n), descending, clamped >= 0 (a Gram
    is positive semi-definite; a negative eigenvalue is rounding). LAPACK syevd either way: numpy's
    on a CPU (faster than torch's there, see `_gram_eigenvalues_numpy`), torch's elsewhere."""
    if gram.device.type == "cpu" and gram.dtype == torch.float64:
        return torch.from_numpy(_eigvalsh_numpy(gram.detach().numpy())[..., ::-1].copy()).clamp(min=0)
    return torch.linalg.eigvalsh(gram).flip(-1).clamp(min=0)


_SPLIT_FROM = 64  # smaller matrices: one batched call costs less than the threads' hand-off


def _eigvalsh_numpy(grams: np.ndarray) -> np.ndarray:
    """np.linalg.eigvalsh of a batch (..., n, n), the matrices split over resdiag's worker threads
    with BLAS on one thread each: the tridiagonal reduction inside syevd is matrix-vector work that
    BLAS's own threads barely speed up (12 Grams of 768x768: 0.30 s against 0.42 s for one batched
    call, 2 cores). Each matrix is solved by the same LAPACK call on one BLAS thread, whatever the
    number of workers, so the eigenvalues do not depend on it."""
    flat = grams.reshape(-1, *grams.shape[-2:])
    parts = workers(len(flat))
    with one_blas_thread() as single:  # held in the serial case too: the same bits for any thread count
        if not single or parts < 2 or grams.shape[-1] < _SPLIT_FROM:
            # without control of BLAS, several multithreaded calls at once contend: one batched call
            return np.linalg.eigvalsh(grams)
        lam = map_threads(np.linalg.eigvalsh, np.array_split(flat, parts))
    return np.concatenate(lam).reshape(grams.shape[:-1])


_PIECE = 8192  # the inner dimension of a Gram is summed in pieces of this many: tasks for the workers


def _gram_eigenvalues_numpy(x: Tensor) -> Tensor:
    """`gram_eigenvalues` of a CPU float64 x with numpy. The Gram A A^T of one buffer is a BLAS syrk
    (half the flops of torch's general matmul), taken in pieces of at most 8192 along the inner
    dimension (a fixed split: the same sums for any thread count) on resdiag's workers with BLAS on
    one thread each, like the eigenvalue problems after it (`_eigvalsh_numpy`). So no BLAS thread
    pool is left spinning after the call to slow the training step that follows it on a small
    machine. GPT-2-small's 50 matrices: 3.55 s against torch's 7.16 s on 2 cores
    (benchmarks/bench_rank.py, "gram eigenvalues")."""
    b, f = x.shape[-2:]
    a = x.detach().reshape(-1, b, f).numpy()
    if f < b:
        a = a.transpose(0, 2, 1)  # the Gram of the smaller side: a a^T of the (size x inner) matrix
    size, inner = a.shape[-2:]
    tasks = [(i, s) for i in range(a.shape[0]) for s in range(0, inner, _PIECE)]

    def piece(task: tuple[int, int]) -> np.ndarray:
        m = a[task[0], :, task[1]:task[1] + _PIECE]
        return m @ m.T  # one buffer, transposed: numpy calls syrk

    with one_blas_thread() as single:
        parts = map_threads(piece, tasks) if single else [piece(t) for t in tasks]
    grams = np.zeros((a.shape[0], size, size))
    for (i, _), g in zip(tasks, parts, strict=True):  # in task order: fixed sums
        grams[i] += g
    return symmetric_eigenvalues(torch.from_numpy(grams)).reshape(*x.shape[:-2], size)

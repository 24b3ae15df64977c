"""Eigenvalues of symmetric positive semi-definite matrices (Grams), the way resdiag takes them.

On a CPU, numpy's LAPACK and BLAS: the Gram A^T A of one buffer is a BLAS syrk (half the flops of a
general matmul), and the eigenvalue problems of a batch are split over resdiag's worker threads
with BLAS on one thread each (resdiag/metrics/threads.py). Elsewhere (CUDA), torch's. Every
eigenvalue comes from the same LAPACK syevd call either way; benchmarks/bench_rank.py ("gram
eigenvalues") times both against torch.
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
    call, 2 cores). Each matrix is solved by the same LAPACK call either way."""
    flat = grams.reshape(-1, *grams.shape[-2:])
    parts = workers(len(flat))
    if parts < 2 or grams.shape[-1] < _SPLIT_FROM:
        return np.linalg.eigvalsh(grams)
    with one_blas_thread() as single:
        if not single:  # several multithreaded BLAS calls at once contend: one batched call instead
            return np.linalg.eigvalsh(grams)
        lam = map_threads(np.linalg.eigvalsh, np.array_split(flat, parts))
    return np.concatenate(lam).reshape(grams.shape[:-1])


def _gram_eigenvalues_numpy(x: Tensor) -> Tensor:
    """`gram_eigenvalues` of a CPU float64 x with numpy: A A^T of one buffer is a BLAS syrk (half
    the flops of torch's general matmul) and numpy's eigvalsh (LAPACK syevd) is the faster one on
    CPUs measured; with `_eigvalsh_numpy`'s split, GPT-2-small's 50 matrices take 3.75 s against
    torch's 6.52 s on 2 cores (benchmarks/bench_rank.py, "gram eigenvalues"). The syrk runs on
    numpy's BLAS threads (OMP_NUM_THREADS / OPENBLAS_NUM_THREADS, which torchrun sets to 1), the
    split on at most torch.get_num_threads() workers (resdiag/metrics/threads.py)."""
    b, f = x.shape[-2:]
    a = x.detach().reshape(-1, b, f).numpy()
    size = min(b, f)
    grams = np.empty((a.shape[0], size, size))
    for i, m in enumerate(a):  # one 2-D product each: numpy's syrk path is for 2-D operands only
        np.matmul(m, m.T, out=grams[i]) if f >= b else np.matmul(m.T, m, out=grams[i])
    return symmetric_eigenvalues(torch.from_numpy(grams)).reshape(*x.shape[:-2], size)

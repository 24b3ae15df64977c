"""resdiag's worker threads for CPU reductions, and numpy's BLAS held to one thread while they run.

numpy's BLAS (OpenBLAS, MKL) threads each call by itself. Called from several threads at once,
those calls contend for BLAS's own pool and run slower than one thread alone (ddot: 2x slower
than numpy's einsum on 2 cores). With BLAS on one thread per call and one call per worker, work
split over the workers scales: on 2 cores, 12 eigenvalue problems of 768x768 (the weight spectra)
take 0.30 s against 0.42 s in one batched call, and the float64 dot products of the gradient norms
are 1.04-1.4x faster than numpy's einsum (benchmarks/bench_rank.py, bench_norms.py).
The limit is set through threadpoolctl for the duration of the work and restored after it.

The workers are named ``resdiag-*``: they are resdiag's, not a user's stray threads
(resdiag/cli/process.py, stray_threads). A forked child (DataLoader workers, ``sweep --jobs``)
starts its own pool.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy  # noqa: F401  (loads numpy's BLAS before threadpoolctl looks for it)
import torch

T = TypeVar("T")
R = TypeVar("R")

_POOL: ThreadPoolExecutor | None = None
_BLAS = None  # threadpoolctl's controller of the loaded BLAS libraries; False if unavailable


def _forget_pool() -> None:  # a forked child has none of its parent's threads: start a new pool
    global _POOL
    _POOL = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def workers(tasks: int) -> int:
    """How many threads ``map_threads`` uses for ``tasks`` tasks: torch's intra-op thread count at
    most (a user's ``torch.set_num_threads`` and torchrun's OMP_NUM_THREADS=1 bound it)."""
    return max(1, min(torch.get_num_threads(), tasks))


def map_threads(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``[fn(x) for x in items]``, in order, spread over ``workers(len(items))`` threads; fn must
    release the GIL (numpy's einsum, dot, eigvalsh do) for the threads to help."""
    threads = workers(len(items))
    if threads < 2:
        return [fn(x) for x in items]
    global _POOL
    if _POOL is None or _POOL._max_workers < threads:
        _POOL = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="resdiag-worker")
    return list(_POOL.map(fn, items))


@contextlib.contextmanager
def one_blas_thread() -> Iterator[bool]:
    """numpy's BLAS limited to one thread inside the block (yields True), or nothing changed when
    threadpoolctl cannot find or limit it, or another thread holds OpenBLAS's pool (yields False;
    callers then take a BLAS-free path). The libraries are those loaded at the first call (this
    module imports numpy first): a BLAS loaded later, such as scipy's, is not resdiag's to hold."""
    global _BLAS
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS = ThreadpoolController().select(user_api="blas")
        except Exception:  # threadpoolctl missing, or unable to read the loaded libraries
            _BLAS = False
    if not _BLAS or not _BLAS.lib_controllers:
        yield False
        return
    # each library's own get/set calls, as threadpoolctl's ``limit()`` makes them without first
    # re-reading every library's information (~0.2 ms, paid on every recorded step otherwise);
    # and, like it, holding and then releasing the claim on OpenBLAS's shared pool: threadpoolctl
    # lets one thread at a time set it, and a claim never released would leave every other thread
    # (a trainer's, a DataLoader's) unable to hold BLAS to one thread
    libs = _BLAS.lib_controllers
    ownership = _ownership()
    if ownership is not None:
        ownership.increment()
    before: list = []
    try:
        before = [lib.get_num_threads() for lib in libs]
        for lib in libs:
            lib.set_num_threads(1)
        yield all(lib.get_num_threads() == 1 for lib in libs)  # False: another thread holds it
    finally:
        for lib, n in zip(libs, before):  # before is short only if reading it failed
            if n is not None:
                lib.set_num_threads(n)
        if ownership is not None:
            ownership.decrement()


def _ownership():
    """threadpoolctl's per-thread count of OpenBLAS claims (3.5+; None before, where there are none)."""
    try:
        from threadpoolctl import CONTROLLING_THREAD_OWNERSHIP
    except ImportError:
        return None
    return CONTROLLING_THREAD_OWNERSHIP

"""The threaded CPU path of the norms: the same bits with 1 and 2 threads, and a forked child
(DataLoader workers, ``sweep --jobs``) gets a working pool of its own instead of its parent's."""

from __future__ import annotations

import multiprocessing as mp
import os

import numpy as np
import pytest
import torch

from resdiag.metrics import norms
from resdiag.metrics import threads as workers


def _tensor() -> torch.Tensor:
    # made by numpy: torch's own intra-op threads must not run in a forked child (PyTorch's
    # DataLoader sets them to 1 there); resdiag's norms use numpy's einsum on their own threads
    return torch.from_numpy(np.arange(3 * norms._CHUNK, dtype=np.float32))


def _norms_in_child(queue) -> None:
    queue.put((torch.get_num_threads(), float(norms.l2_norms([_tensor(), _tensor()])[1])))


def test_result_does_not_depend_on_threads():
    g = torch.Generator().manual_seed(0)
    ts = [torch.randn(n, generator=g) for n in (3 * norms._CHUNK + 5, norms._SMALL, 7)]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = [float(v) for v in norms.l2_norms(ts)]
        torch.set_num_threads(2)
        two = [float(v) for v in norms.l2_norms(ts)]
    finally:
        torch.set_num_threads(before)
    assert one == two


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_computes_norms():
    torch.set_num_threads(max(2, torch.get_num_threads()))
    want = float(norms.l2_norms([_tensor(), _tensor()])[1])  # the parent's pool now exists
    assert workers._POOL is not None
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_norms_in_child, args=(queue,))
    child.start()
    child.join(60)
    if child.exitcode is None:
        child.kill()
    assert child.exitcode == 0
    threads, got = queue.get(timeout=5)
    assert threads >= 2 and got == want  # the child ran the threaded path


def test_both_cpu_paths_are_float64_exact_and_blas_threads_are_restored():
    """The BLAS-dot path (BLAS held to one thread) and the einsum path (BLAS not controllable) give
    the float64 sum of squares to float64 rounding, for float32 and float16 input; the BLAS thread
    count is what it was after the call."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    g = np.random.default_rng(0)
    for dtype in (np.float32, np.float16):
        a = (g.standard_normal(3 * norms._SUB + 11) * 1e-3).astype(dtype)
        exact = float(np.sum(a.astype(np.float64) ** 2))  # numpy's pairwise float64 sum
        blas = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
        with workers.one_blas_thread() as single:
            dot = norms._sum_of_squares_dot(a)
        assert [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"] == blas
        assert single == bool(blas)
        assert dot == pytest.approx(exact, rel=1e-13)
        assert norms._sum_of_squares_einsum(a) == pytest.approx(exact, rel=1e-13)

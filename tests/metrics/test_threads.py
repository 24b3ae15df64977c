"""resdiag's worker threads: the split eigenvalue problems equal one batched LAPACK call, with and
without a controllable BLAS, and the BLAS thread count is restored."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from resdiag.metrics import eigen, threads


def _grams(k: int, n: int) -> np.ndarray:
    a = np.random.default_rng(0).standard_normal((k, n + 7, n))
    return np.einsum("kij,kil->kjl", a, a)


@pytest.mark.parametrize("shape", [(5, 96), (2, 3, 80), (1, 70), (4, 8)])
def test_split_eigenvalues_equal_one_batched_call(shape):
    g = _grams(int(np.prod(shape[:-1])), shape[-1]).reshape(*shape, shape[-1])
    want = np.linalg.eigvalsh(g)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        got = eigen._eigvalsh_numpy(g)
    finally:
        torch.set_num_threads(before)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


def test_eigenvalues_do_not_depend_on_the_thread_count():
    pytest.importorskip("threadpoolctl")
    g = _grams(6, 100)
    before = torch.get_num_threads()
    try:
        got = []
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            got.append(eigen._eigvalsh_numpy(g))
    finally:
        torch.set_num_threads(before)
    assert all(np.array_equal(got[0], other) for other in got[1:])


def test_without_blas_control_one_batched_call(monkeypatch):
    calls = []
    monkeypatch.setattr(eigen, "one_blas_thread", lambda: contextlib.nullcontext(False))
    monkeypatch.setattr(eigen, "map_threads", lambda fn, items: calls.append(1) or [fn(x) for x in items])
    g = _grams(4, 96)
    np.testing.assert_array_equal(eigen._eigvalsh_numpy(g), np.linalg.eigvalsh(g))
    assert calls == []  # no concurrent multithreaded BLAS calls


def test_blas_thread_count_restored_after_the_work():
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas():
        return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]

    before = blas()
    with threads.one_blas_thread() as single:
        inside = blas()
    assert blas() == before
    assert single == bool(before) and (not single or set(inside) == {1})


def test_map_threads_keeps_order_and_serial_below_two_threads():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert threads.map_threads(lambda x: x * x, [3, 1, 2]) == [9, 1, 4]
        torch.set_num_threads(2)
        assert threads.map_threads(lambda x: x * x, list(range(9))) == [x * x for x in range(9)]
    finally:
        torch.set_num_threads(before)

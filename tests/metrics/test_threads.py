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

    with threads.one_blas_thread():  # selects the BLAS libraries loaded now (numpy's), once
        pass
    mine = {lib.filepath for lib in threads._BLAS.lib_controllers} if threads._BLAS else set()

    def blas():  # only those: another BLAS loaded later (scipy's) is not numpy's, not resdiag's
        return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["filepath"] in mine]

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


def test_one_blas_thread_holds_blas_from_any_thread():
    """threadpoolctl lets one thread at a time set OpenBLAS's shared pool: a thread that used
    one_blas_thread and lives on must not keep that claim, or every other thread's block would
    run with BLAS's full pool while saying it had one thread (and a user's own
    threadpool_limits would do nothing)."""
    import threading

    threadpoolctl = pytest.importorskip("threadpoolctl")
    clear = getattr(getattr(threadpoolctl, "OpenBLASController", None), "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)  # whatever earlier tests left: the other thread claims the pool first
    used, finish = threading.Event(), threading.Event()

    def other():
        with threads.one_blas_thread():
            pass
        used.set()
        finish.wait()  # alive, like a DataLoader or trainer thread

    worker = threading.Thread(target=other)
    worker.start()
    used.wait()
    try:
        with threads.one_blas_thread() as single:
            inside = [lib.get_num_threads() for lib in threads._BLAS.lib_controllers] if single else []
    finally:
        finish.set()
        worker.join()
    if threads._BLAS:
        assert single and set(inside) == {1}

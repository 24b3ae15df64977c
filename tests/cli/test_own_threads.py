"""resdiag's own workers (resdiag/metrics/threads.py, used by the norms) are not a user model's
stray threads: a zoo run must not print "your model left N thread(s) running"."""

from __future__ import annotations

import threading

import torch

from resdiag.cli.process import stray_threads
from resdiag.metrics import norms


def test_norm_pool_threads_are_not_strays():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        big = [torch.ones(2 * norms._CHUNK) for _ in range(2)]
        norms.l2_norms(big)  # starts the pool
    finally:
        torch.set_num_threads(before)
    assert any(t.name.startswith("resdiag-worker") for t in threading.enumerate())
    assert not any(t.name.startswith("resdiag-") for t in stray_threads())


def test_a_user_thread_is_still_a_stray():
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, name="user-worker")
    t.start()
    try:
        assert t in stray_threads()
    finally:
        stop.set()
        t.join()

"""Norms of sparse gradients (nn.Embedding(sparse=True)): those of their dense form."""

import pytest
import torch

from resdiag.metrics.norms import l2_norm, l2_norms


def test_sparse_gradients_have_the_norm_of_their_dense_form():
    """nn.Embedding(sparse=True) gives sparse COO gradients, with repeated rows uncoalesced: their
    norm is that of the summed dense tensor (it was a NotImplementedError from the reduction)."""
    i = torch.tensor([[0, 2, 2, 5]])
    v = torch.tensor([[1.0, -2.0], [3.0, 4.0], [0.5, 0.5], [1e-30, 2.0]])
    coo = torch.sparse_coo_tensor(i, v, (6, 2))  # row 2 twice: summed before the norm
    dense = coo.to_dense().double()
    want = float(dense.norm())
    assert float(l2_norm(coo)) == pytest.approx(want, rel=1e-15)
    got = l2_norms([coo, dense.to_sparse_csr(), torch.ones(3)])
    assert [float(x) for x in got] == pytest.approx([want, want, 3 ** 0.5], rel=1e-15)


def test_a_monitor_on_a_sparse_embedding_reads_its_gradient():
    from torch import nn

    from resdiag.api import Monitor

    torch.manual_seed(0)
    emb, head = nn.Embedding(50, 16, sparse=True), nn.Linear(16, 50)
    model = nn.Sequential(emb, head)
    ids = torch.randint(0, 50, (4, 8))
    monitor = Monitor(model, every=1)
    with monitor.record(0) as rec:
        nn.functional.cross_entropy(model(ids).reshape(-1, 50), ids.reshape(-1)).backward()
    want = float(emb.weight.grad.to_dense().double().norm())
    assert rec.param_norms["0.weight"] == pytest.approx(want, rel=1e-12)

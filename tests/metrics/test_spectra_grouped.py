"""The spectra of several batches of matrices taken together (``gram_eigenvalues_many``, and
``weight_spectra`` grouping the shapes of a network): the same bits as numpy on each matrix alone,
for any thread count and any grouping, and the float64 memory bounded as before."""

import numpy as np
import pytest
import torch

import resdiag.metrics.rank as rank_module
from resdiag.metrics.eigen import gram_eigenvalues_many
from resdiag.metrics.rank import weight_spectra


def batches():
    g = torch.Generator().manual_seed(0)
    shapes = [(3, 70, 300), (1, 96, 40), (2, 8, 500), (0, 80, 90), (1, 200, 9000), (4, 30, 30)]
    return [torch.randn(*s, generator=g, dtype=torch.float64) for s in shapes]


def numpy_reference(x: torch.Tensor) -> np.ndarray:
    """numpy's eigvalsh of the smaller Gram of each matrix, descending, clamped at 0; the Gram of a
    matrix with more than 8192 columns summed in pieces of 8192, as resdiag sums it."""
    out = []
    for m in x.numpy():
        a = m if m.shape[1] >= m.shape[0] else m.T
        gram = np.zeros((a.shape[0], a.shape[0]))
        for s in range(0, a.shape[1], 8192):
            p = np.ascontiguousarray(a[:, s:s + 8192])
            gram += p @ p.T
        out.append(np.maximum(np.linalg.eigvalsh(gram)[::-1], 0))
    return np.array(out).reshape(x.shape[0], min(x.shape[1:]))


@pytest.mark.parametrize("threads", [1, 2])
def test_batches_together_equal_numpy_on_each_matrix(threads):
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got = gram_eigenvalues_many(batches())
    finally:
        torch.set_num_threads(saved)
    for x, lam in zip(batches(), got, strict=True):
        assert lam.shape == (x.shape[0], min(x.shape[1:]))
        np.testing.assert_array_equal(lam.numpy(), numpy_reference(x))


def resnet_like_weights():
    g = torch.Generator().manual_seed(1)
    shapes = [(16, 3, 3, 3), (16, 16, 3, 3), (16, 16, 3, 3), (32, 16, 3, 3), (32, 32, 3, 3), (32, 16, 1, 1),
              (64, 32, 3, 3), (64, 64, 3, 3), (10, 64)]
    return [torch.randn(*s, generator=g) * 0.1 for s in shapes]


def test_grouping_changes_no_bit_and_bounds_the_memory(monkeypatch):
    """Every float64 batch alive while spectra are taken (weak references to what torch.empty made)
    is at most the bound, or the one group larger than it."""
    import weakref

    weights = resnet_like_weights()
    together = weight_spectra(weights)
    calls, alive, made = [], [], torch.empty

    def empty(*args, **kwargs):
        t = made(*args, **kwargs)
        if kwargs.get("dtype") == torch.float64:
            alive.append(weakref.ref(t))
        return t

    def many(batches, method, original=rank_module.singular_values_many):
        calls.append(sum(r().numel() for r in alive if r() is not None))
        return original(batches, method)

    monkeypatch.setattr(torch, "empty", empty)
    monkeypatch.setattr(rank_module, "singular_values_many", many)
    monkeypatch.setattr(rank_module, "_GROUPED_ENTRIES", 40_000)  # entries of float64 held at once
    apart = weight_spectra(weights)
    assert apart == together
    assert len(calls) > 1
    largest_group = 2 * 64 * 64 * 9  # the two 64x64x3x3 weights: one group, over the bound alone
    assert all(c <= 40_000 or c == largest_group for c in calls), calls


def test_each_spectrum_against_numpy_svd():
    for w, sp in zip(resnet_like_weights(), weight_spectra(resnet_like_weights()), strict=True):
        s = np.linalg.svd(w.reshape(w.shape[0], -1).double().numpy(), compute_uv=False)
        assert sp.spectral_norm == pytest.approx(s[0], rel=1e-12)
        p = s / s.sum()
        assert sp.erank == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-10)

"""Both CPU paths of ``l2_norm``/``l2_norms`` (torch below 2^16 entries, numpy's einsum from 2^16 on)
against a numpy float64 reference, at scales where float32 squares under- or overflow, in every
narrow dtype, with NaN, inf and exact zeros; and the mixed list keeps its order."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from resdiag.metrics.norms import _SMALL, l2_norm, l2_norms


def _reference(t: torch.Tensor) -> float:
    a = t.detach().double().numpy().ravel()  # bfloat16 -> float64 through torch: exact
    if np.isnan(a).any():
        return math.nan
    if np.isinf(a).any():
        return math.inf
    scale = np.abs(a).max()
    return 0.0 if scale == 0 else float(scale * np.sqrt(np.sum((a / scale) ** 2)))


@pytest.mark.parametrize("numel", [_SMALL // 4, _SMALL, 3 * _SMALL + 7])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("scale", [1e-30, 1e-3, 1.0, 1e30])
def test_norm_equals_float64_reference(numel, dtype, scale):
    g = torch.Generator().manual_seed(numel)
    t = (torch.randn(numel, generator=g, dtype=torch.float64) * scale).to(dtype)
    if dtype == torch.float16 and not (6e-8 < scale < 6e4):
        t = torch.randn(numel, generator=g).to(dtype)  # outside float16's range: unscaled
    want = _reference(t)
    assert float(l2_norm(t)) == pytest.approx(want, rel=1e-12)
    assert float(l2_norms([t])[0]) == pytest.approx(want, rel=1e-12)
    assert want > 0 and math.isfinite(want)


@pytest.mark.parametrize("numel", [100, 2 * _SMALL])
def test_non_finite_and_zero(numel):
    z = torch.zeros(numel)
    n = torch.ones(numel)
    n[numel // 2] = math.nan
    i = torch.ones(numel)
    i[3] = -math.inf
    got = [float(v) for v in l2_norms([z, n, i])]
    assert got[0] == 0.0
    assert math.isnan(got[1])
    assert got[2] == math.inf


def test_mixed_list_keeps_order_and_devices_dtypes():
    g = torch.Generator().manual_seed(0)
    ts = [torch.randn(n, generator=g).to(d) for n, d in
          [(10, torch.float32), (2 * _SMALL, torch.float32), (5, torch.float64), (_SMALL, torch.bfloat16),
           (3, torch.float16), (0, torch.float32)]]
    got = [float(v) for v in l2_norms(ts)]
    assert got == pytest.approx([_reference(t) if t.numel() else 0.0 for t in ts], rel=1e-12)
    assert all(v.dtype == torch.float64 for v in l2_norms(ts))


def test_one_fused_call_per_device_and_dtype(monkeypatch):
    """A fused ``_foreach_norm`` call never mixes dtypes: on CUDA a bfloat16 activation gradient
    beside float32 parameter gradients would send the whole list down the one-kernel-per-tensor
    path. The norms themselves do not depend on the grouping."""
    from resdiag.metrics import norms

    calls = []
    real = norms._foreach
    monkeypatch.setattr(norms, "_foreach", lambda ts: calls.append({t.dtype for t in ts}) or real(ts))
    g = torch.Generator().manual_seed(2)
    kinds = [(10, torch.float32), (7, torch.bfloat16), (5, torch.float32), (3, torch.float16),
             (9, torch.bfloat16)]
    ts = [torch.randn(n, generator=g).to(d) for n, d in kinds]
    got = [float(v) for v in l2_norms(ts)]
    assert all(len(dtypes) == 1 for dtypes in calls) and len(calls) == 3
    assert got == pytest.approx([_reference(t) for t in ts], rel=1e-12)

"""``StepProbe``'s one host copy (``to_host``): order, NaN for absent norms, and the loss scale
divided out on the host with the bits the device division gives, only where it applies."""

from __future__ import annotations

import math

import pytest
import torch

from resdiag.probes.unscale import _divide, to_host


def _t(v: float) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.float64)


@pytest.mark.parametrize("weights_scaled", [True, False])
def test_scale_divided_where_it_applies_with_device_bits(weights_scaled):
    g = torch.tensor([3.7e5, 1.3e-30, 2.0**40 / 3], dtype=torch.float64)
    w = torch.tensor([0.7, 11.0], dtype=torch.float64)
    a = torch.tensor([5.5e3, 9.1e-3], dtype=torch.float64)
    scale = torch.tensor([2.0**16 * 1.5], dtype=torch.float32)  # GradScaler's _scale: shape (1,)
    gnorms = [g[0], None, g[1], g[2]]
    activation = [a[0], None, a[1]]
    got = to_host(gnorms, list(w.unbind()), activation, scale.double(), weights_scaled)
    s = scale.double()
    want_g = (g / s if weights_scaled else g).tolist()
    want = [want_g[0], math.nan, want_g[1], want_g[2], *w.tolist(), *(a / s).tolist()[:1], math.nan,
            (a / s).tolist()[1]]
    assert len(got) == len(want)
    for x, y in zip(got, want, strict=True):
        assert (math.isnan(x) and math.isnan(y)) or x == y  # bit for bit


def test_nothing_present_and_no_scale():
    assert all(math.isnan(v) for v in to_host([None], [], [None, None], None, True))
    assert to_host([_t(2.0)], [_t(3.0)], [_t(4.0)], None, True) == [2.0, 3.0, 4.0]


def test_divide_is_ieee_division():
    pairs = [(1.0, 0.0), (-1.0, 0.0), (1.0, -0.0), (0.0, 0.0), (math.nan, 0.0), (6.0, 4.0), (math.inf, 2.0)]
    for a, b in pairs:
        want = float(torch.tensor(a, dtype=torch.float64) / torch.tensor(b, dtype=torch.float64))
        got = _divide(a, b)
        assert (math.isnan(got) and math.isnan(want)) or got == want, (a, b)

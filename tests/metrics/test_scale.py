"""Weight gain RMS(W) * sqrt(fan_in) (resdiag/metrics/scale.py) against float64 numpy."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from resdiag.metrics.scale import gain_from_norm, median_gain, weight_gain


def _numpy_gain(w: np.ndarray) -> float:
    fan_in = int(np.prod(w.shape[1:]))
    return float(np.sqrt(np.mean(w.astype(np.float64) ** 2)) * np.sqrt(fan_in))


@settings(max_examples=60, deadline=None)
@given(shape=st.sampled_from([(3, 5), (64, 32), (1, 7), (8, 3, 3, 3), (4, 2, 5)]),
       scale=st.sampled_from([1e-30, 1e-4, 1.0, 10.0, 1e20]), seed=st.integers(0, 2**31 - 1),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_weight_gain_equals_numpy(shape, scale, seed, dtype):
    w = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale
    w = w.to(dtype)
    assert weight_gain(w) == pytest.approx(_numpy_gain(w.double().numpy()), rel=1e-12)


def test_closed_forms():
    # He et al. 2015's init: std sqrt(2 / fan_in) has gain sqrt(2) in expectation
    w = torch.randn(4096, 512, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert weight_gain(w * math.sqrt(2 / 512)) == pytest.approx(math.sqrt(2), rel=1e-2)
    assert weight_gain(torch.ones(3, 4)) == pytest.approx(2.0)  # RMS 1, fan_in 4
    assert weight_gain(torch.full((5, 2, 3, 3), 0.5)) == pytest.approx(0.5 * math.sqrt(18))
    assert weight_gain(torch.zeros(3, 3)) == 0.0
    assert gain_from_norm(6.0, 4) == pytest.approx(3.0)  # ||W||_F / sqrt(fan_out)


def test_gain_from_norm_agrees_with_the_matrix():
    w = torch.randn(7, 3, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert gain_from_norm(float(w.norm()), 7) == pytest.approx(weight_gain(w), rel=1e-12)


def test_median_gain():
    assert median_gain([2.0, 6.0, 40.0], [1, 4, 100]) == pytest.approx(3.0)  # gains 2, 3, 4
    assert median_gain([2.0, 4.0], [1, 1]) == pytest.approx(3.0)
    assert math.isnan(median_gain([], []))


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError):
        weight_gain(torch.ones(3))
    with pytest.raises(ValueError):
        gain_from_norm(1.0, 0)
    with pytest.raises(ValueError):
        median_gain([1.0], [1, 2])

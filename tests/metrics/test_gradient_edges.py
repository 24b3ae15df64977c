"""Edges of resdiag/metrics/gradient.py: mean and std over steps against Python's statistics,
and silence (no numpy warning, which the CLI would print as a second stderr line) on NaN, inf and
overflow."""

import math
import statistics
import warnings

import pytest

from resdiag.metrics.gradient import end_to_end_ratio, log_growth_per_block, mean_std


def test_mean_std_against_the_statistics_module():
    steps = [[1.0, 2.0, 1e-30], [4.0, 2.5, 3e-30], [7.0, 9.0, 2e-30]]
    mean, std = mean_std(steps)
    for j, column in enumerate(zip(*steps, strict=True)):
        assert mean[j] == pytest.approx(statistics.fmean(column), rel=1e-12)
        assert std[j] == pytest.approx(statistics.pstdev(column), rel=1e-12)  # population std
    assert all(type(v) is float for v in mean + std)


def test_mean_std_propagates_nan_and_inf_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean, std = mean_std([[math.inf, math.nan, 1.0], [1.0, 1.0, 1.0]])
        mean_std([[1e308, 1.0], [1e308, 1.0]])  # the sum overflows: still no warning
    assert mean[0] == math.inf and math.isnan(std[0])  # inf - inf inside the std
    assert math.isnan(mean[1]) and math.isnan(std[1])
    assert (mean[2], std[2]) == (1.0, 0.0)


def test_end_to_end_ratio_ends_and_zero():
    assert end_to_end_ratio([6.0, 100.0, 3.0]) == 2.0  # only the two ends count
    assert end_to_end_ratio([0.0, 3.0]) == 0.0  # nothing reaches x_0: a ratio of 0, not NaN
    assert math.isnan(end_to_end_ratio([]))
    assert math.isnan(end_to_end_ratio([3.0, math.nan]))
    assert math.isnan(end_to_end_ratio([3.0, -math.inf]))


def test_log_growth_skips_unusable_points_and_fits_the_rest():
    # ln g against steps back from the output: points 0 and inf dropped, the other three on a line.
    g = [8.0, 0.0, 2.0, math.inf, 0.5]
    assert log_growth_per_block(g) == pytest.approx(math.log(2.0), rel=1e-12)
    assert math.isnan(log_growth_per_block([0.0, 0.0, 1.0]))  # one usable point
    assert log_growth_per_block([1.0, 1.0]) == pytest.approx(0.0, abs=1e-15)


def test_mean_std_has_numpys_bits_and_log_growth_polyfits_slope():
    """The plain-Python summaries against numpy, which they replace on the Monitor's path: mean
    and std over axis 0 bit for bit; the slope to 1e-12 of numpy's least-squares polyfit."""
    import numpy as np

    rng = np.random.default_rng(0)
    for steps in (1, 2, 4, 7, 9, 40):
        samples = np.exp(rng.normal(0.0, 20.0, size=(steps, 33)))
        mean, std = mean_std(samples.tolist())
        assert mean == samples.mean(axis=0).tolist()
        assert std == samples.std(axis=0).tolist()
        column = samples[:, :1]  # one column: numpy sums it pairwise from 8 steps on (last bit)
        mean, std = mean_std(column.tolist())
        assert mean == pytest.approx(column.mean(axis=0).tolist(), rel=1e-15)
        assert std == pytest.approx(column.std(axis=0).tolist(), rel=1e-14)
    for n in (2, 5, 57):
        g = np.exp(rng.normal(0.0, 3.0, size=n) + 0.3 * np.arange(n))
        want = np.polyfit(np.arange(n)[::-1].astype(float), np.log(g), 1)[0]
        assert log_growth_per_block(g.tolist()) == pytest.approx(want, rel=1e-12, abs=1e-14)

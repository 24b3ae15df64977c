import math

import pytest

from resdiag.metrics.gradient import (
    end_to_end_ratio,
    first_non_finite,
    log_growth_per_block,
    mean_std,
)


@pytest.mark.parametrize("lam", [0.5, 0.9, 1.0, 1.1, 2.0])
def test_slope_of_geometric_profile_is_log_lambda(lam):
    L = 30
    norms = [3.0 * lam ** (L - l) for l in range(L + 1)]  # dE/dx_l = lam^(L-l) dE/dx_L
    assert log_growth_per_block(norms) == pytest.approx(math.log(lam), abs=1e-12)
    assert end_to_end_ratio(norms) == pytest.approx(lam**L)


def test_unusable_points_are_skipped_or_nan():
    assert math.isnan(log_growth_per_block([1.0]))
    assert math.isnan(log_growth_per_block([math.nan, 0.0, 1.0]))
    assert log_growth_per_block([4.0, math.inf, 1.0]) == pytest.approx(math.log(2))
    assert math.isnan(end_to_end_ratio([1.0, 0.0]))
    assert math.isnan(end_to_end_ratio([math.inf, 1.0]))


def test_first_non_finite_and_mean_std():
    assert first_non_finite([1.0, 2.0]) is None
    assert first_non_finite([1.0, math.nan, math.inf]) == 1
    mean, std = mean_std([[1.0, 2.0], [3.0, 2.0]])
    assert mean == [2.0, 2.0] and std == [1.0, 0.0]

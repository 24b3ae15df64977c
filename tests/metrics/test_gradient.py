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


def test_unit_norms_group_layers_by_block():
    from resdiag.metrics.gradient import unit_norms

    norms = [3.0, 1.0, 2.0, 2.0, 5.0]
    names = ["stem", "b.0.q", "b.0.fc", "b.1.fc", "head"]
    values, labels = unit_norms(norms, names, ["b.0", "b.1"])
    assert labels == ["stem", "b.0", "b.1", "head"]
    assert values == pytest.approx([3.0, math.sqrt(5.0), 2.0, 5.0])
    assert unit_norms(norms, names, []) == (norms, names)  # no blocks: every layer is a unit
    values, _ = unit_norms([1.0, math.nan, 1.0], ["b.0.a", "b.0.b", "c"], ["b.0"])
    assert math.isnan(values[0]) and values[1] == 1.0
    values, _ = unit_norms([1.0, math.inf], ["b.0.a", "b.0.b"], ["b.0"])
    assert values == [math.inf]
    for tiny in (1e-200, 1e200):  # squares would under- or overflow
        values, _ = unit_norms([tiny, tiny], ["b.0.a", "b.0.b"], ["b.0"])
        assert values[0] == pytest.approx(math.sqrt(2) * tiny, rel=1e-15)

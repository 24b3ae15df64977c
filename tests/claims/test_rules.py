"""Every verdict rule of the claims, on constructed numbers (no training)."""

import math

import pytest

from resdiag.claims.gradients import C2_TOLERANCE, c1_verdict, c2_verdict, predicted_slope
from resdiag.claims.ranks import paired_verdict
from resdiag.claims.stats import MARGIN, Sample, at_chance, combine, compare, sample
from resdiag.claims.trained import degradation_verdict, ranking_verdict


def s(*values):
    return sample(values)


# ----------------------------------------------------------------------------- stats


def test_sample_mean_and_spread_match_numpy():
    import numpy as np

    x = s(0.1, 0.4, 0.25)
    assert x.mean == pytest.approx(np.mean([0.1, 0.4, 0.25]))
    assert x.spread == pytest.approx(np.std([0.1, 0.4, 0.25], ddof=1))
    assert math.isnan(s(0.3).spread) and s(0.3).text() == "0.3"
    assert s(1.0, 2.0, 3.0).text() == "2 ± 1"
    assert not s(1.0, math.nan).finite and s(1.0, math.nan).text() == "n/a"


def test_compare_needs_the_difference_beyond_two_standard_errors():
    a, b = s(0.10, 0.12, 0.14), s(0.30, 0.32, 0.34)  # spread 0.02 each, difference 0.2
    assert compare(a, b) == "lower" and compare(b, a) == "higher"
    se = math.sqrt(0.02 ** 2 / 3 * 2)
    just_in = s(0.12 + MARGIN * se * 1.01 - 0.02, 0.12 + MARGIN * se * 1.01, 0.12 + MARGIN * se * 1.01 + 0.02)
    just_out = s(0.12 + MARGIN * se * 0.99 - 0.02, 0.12 + MARGIN * se * 0.99, 0.12 + MARGIN * se * 0.99 + 0.02)
    assert compare(a, just_in) == "lower" and compare(a, just_out) == "tie"


def test_compare_floor_ties_identical_and_tiny_differences():
    assert compare(s(0.0, 0.0, 0.0), s(0.0, 0.0, 0.0)) == "tie"
    assert compare(s(0.0, 0.0, 0.0), s(0.002, 0.002, 0.002), floor=1 / 400) == "tie"
    assert compare(s(0.0, 0.0, 0.0), s(0.003, 0.003, 0.003), floor=1 / 400) == "lower"


def test_compare_unknown_without_spread_or_finite_values():
    assert compare(s(0.1), s(0.5)) == "unknown"
    assert compare(s(0.1, math.nan), s(0.5, 0.5)) == "unknown"


def test_at_chance_uses_binomial_standard_errors():
    # 10 classes, 400 samples: chance error 0.9, 3 SE = 3 * sqrt(0.09 / 400) = 0.045
    assert at_chance(s(0.86, 0.86, 0.86), 10, 400)
    assert not at_chance(s(0.85, 0.85, 0.85), 10, 400)
    assert at_chance(s(0.95, 0.97, 0.93), 10, 400)


@pytest.mark.parametrize(("orders", "verdict"), [
    (["lower", "lower"], "supported"),
    (["lower", "tie"], "mixed"),
    (["lower", "higher"], "not supported"),
    (["tie", "higher"], "not supported"),
    (["tie", "tie"], "inconclusive"),
    (["lower", "unknown"], "inconclusive"),
    ([], "inconclusive"),
])
def test_combine(orders, verdict):
    assert combine(orders, "lower")[0] == verdict


def test_combine_expected_higher():
    assert combine(["higher"], "higher")[0] == "supported"
    assert combine(["lower"], "higher")[0] == "not supported"


# ----------------------------------------------------------------------------- C1, C2


def test_c1_rule():
    assert c1_verdict({"resnet-batch-20": ["healthy"] * 3, "resnet-none-110": ["exploding"] * 3})[0] == "supported"
    assert c1_verdict({"resnet-none-20": ["healthy", "vanishing", "healthy"]})[0] == "not supported"
    assert c1_verdict({"resnet-none-20": ["healthy", "inconclusive", "healthy"]})[0] == "inconclusive"
    assert c1_verdict({})[0] == "inconclusive"


def test_predicted_slope_closed_form():
    assert predicted_slope(0.5, 1 / 8) == pytest.approx(-0.6628, abs=1e-4)  # the audit figure
    assert predicted_slope(1.0, 0.0) == 0.0 and predicted_slope(0.9, 0.0) == pytest.approx(math.log(0.9))


def test_c2_rule_judges_against_the_prediction():
    pred = {0.5: predicted_slope(0.5, 0.125), 1.0: predicted_slope(1.0, 0.125)}
    near = {lam: s(p - 0.002, p, p + 0.002) for lam, p in pred.items()}
    assert c2_verdict(near, pred)[0] == "supported"
    # the prod-lambda law alone (ln λ) is off by 0.03 at λ = 0.5 with g = 1/8: rejected
    prod = {lam: s(math.log(lam) - 0.001, math.log(lam), math.log(lam) + 0.001) for lam in pred}
    assert abs(math.log(0.5) - pred[0.5]) > C2_TOLERANCE and c2_verdict(prod, pred)[0] == "not supported"
    # a wide seed spread widens the tolerance: 2 standard errors of the mean
    wide = {0.5: s(pred[0.5] - 0.05, pred[0.5] + 0.02, pred[0.5] + 0.06), 1.0: near[1.0]}
    assert c2_verdict(wide, pred)[0] == "supported"
    assert c2_verdict({0.5: s(math.nan, 1.0), 1.0: near[1.0]}, pred)[0] == "inconclusive"
    assert c2_verdict({0.5: s(pred[0.5]), 1.0: near[1.0]}, pred)[0] == "inconclusive"


# ----------------------------------------------------------------------------- C3, C4, C5


def test_ranking_rule():
    errs = {"identity": s(0.05, 0.06, 0.07), "gate": s(0.30, 0.32, 0.31), "conv": s(0.20, 0.22, 0.21)}
    assert ranking_verdict(errs, "identity", 1 / 400, 400)[0] == "supported"
    errs["shortcut_gate"] = s(0.05, 0.07, 0.06)
    assert ranking_verdict(errs, "identity", 1 / 400, 400)[0] == "mixed"
    errs["conv"] = s(0.01, 0.012, 0.011)
    assert ranking_verdict(errs, "identity", 1 / 400, 400)[0] == "not supported"
    ties = {"identity": s(0.05, 0.06, 0.07), "other": s(0.06, 0.05, 0.07)}
    assert ranking_verdict(ties, "identity", 1 / 400, 400)[0] == "inconclusive"


def test_ranking_inconclusive_when_the_claimed_best_is_at_chance():
    errs = {"preact": s(0.9, 0.89, 0.91), "post": s(0.95, 0.96, 0.97)}
    verdict, why = ranking_verdict(errs, "preact", 1 / 400, 400)
    assert verdict == "inconclusive" and "chance" in why


def test_degradation_rule():
    f, n = 1 / 1400, 1400
    good_shallow = s(0.10, 0.12, 0.11)
    assert degradation_verdict(good_shallow, s(0.5, 0.55, 0.6), s(0.02, 0.03, 0.02), s(0.02, 0.02, 0.03),
                               f, n)[0] == "supported"
    assert degradation_verdict(good_shallow, s(0.5, 0.55, 0.6), s(0.02, 0.03, 0.02), s(0.3, 0.32, 0.31),
                               f, n)[0] == "mixed"
    assert degradation_verdict(good_shallow, s(0.01, 0.02, 0.015), s(0.02, 0.03, 0.02), s(0.02, 0.02, 0.03),
                               f, n)[0] == "not supported"
    assert degradation_verdict(good_shallow, s(0.11, 0.1, 0.12), s(0.02, 0.03, 0.02), s(0.02, 0.02, 0.03),
                               f, n)[0] == "inconclusive"


def test_degradation_inconclusive_at_chance():
    ok = s(0.1, 0.11, 0.12)
    chance = s(0.9, 0.89, 0.9)
    assert degradation_verdict(chance, ok, ok, ok, 1 / 1400, 1400)[0] == "inconclusive"
    verdict, why = degradation_verdict(ok, chance, ok, ok, 1 / 1400, 1400)
    assert verdict == "inconclusive" and "deep plain" in why


# ----------------------------------------------------------------------------- C6-C8


def test_paired_rule_and_its_chance_gate():
    assert paired_verdict(["lower", "lower"], "lower", None)[0] == "supported"
    assert paired_verdict(["higher"], "higher", None)[0] == "supported"
    assert paired_verdict(["lower"], "lower", "the deep plain net is still at chance accuracy") == (
        "inconclusive", "the deep plain net is still at chance accuracy")
    assert paired_verdict(["tie"], "lower", None)[0] == "inconclusive"


def test_sample_type():
    assert isinstance(sample([1, 2]), Sample) and sample([1, 2]).values == (1.0, 2.0)

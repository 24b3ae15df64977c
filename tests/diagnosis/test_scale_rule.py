"""The weight-scale rule ``scale.gain`` (resdiag/diagnosis/scale.py), wired into the grad-flow verdict."""

import math

import pytest

from resdiag.diagnosis.gradflow import diagnose
from resdiag.diagnosis.scale import weight_scale
from resdiag.diagnosis.thresholds import GradThresholds
from resdiag.errors import ResdiagError
from resdiag.results import GradFlowSummary


def verdict(gain, **t):
    summary = GradFlowSummary(1.0, 1.0, 0.0, 1.0, 1.0, weight_gain_median=gain)
    return diagnose(summary, [1.0, 1.0], ["w0", "w1"], [1.0, 1.0], ["x0", "x1"], GradThresholds(**t))


@pytest.mark.parametrize("gain", [0.0, 0.11, 1.0, math.sqrt(2), 2.0])
def test_variance_preserving_and_small_gains_are_healthy(gain):
    assert verdict(gain).findings == ()


@pytest.mark.parametrize("gain", [2.01, 3.2, 14.1, 1e30])
def test_gains_above_two_are_exploding(gain):
    v = verdict(gain)
    assert v.status == "exploding" and [f.rule for f in v.findings] == ["scale.gain"]
    (f,) = v.findings
    assert (f.value, f.threshold) == (gain, 2.0) and "He et al. 2015" in f.source


def test_threshold_is_configurable_and_nan_is_not_judged():
    assert verdict(3.0, gain_max=4.0).findings == ()
    assert weight_scale(math.nan) == [] and weight_scale(math.inf) == []


@pytest.mark.parametrize("bad", [0.5, math.nan, math.inf, -1.0])
def test_gain_max_below_one_or_not_finite_is_refused(bad):
    with pytest.raises(ResdiagError, match="gain_max"):
        GradThresholds(gain_max=bad)


def test_older_results_without_the_gain_are_not_flagged():
    assert math.isnan(GradFlowSummary(1.0, 1.0, 0.0, 1.0).weight_gain_median)
    assert verdict(math.nan).findings == ()

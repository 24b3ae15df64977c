"""The one metric registry: every summary field declared once, and every reader uses it."""

import dataclasses

import pytest

from resdiag.check.metrics import LIMITS, METRICS
from resdiag.metrics.registry import GRAD_FLOW, RANK, Metric, _add, of_probe, values
from resdiag.metrics.registry import METRICS as REGISTRY
from resdiag.results import GradFlowSummary, RankSummary


def test_the_registry_is_the_summaries():
    assert [m.name for m in of_probe(GRAD_FLOW)] == [f.name for f in dataclasses.fields(GradFlowSummary)]
    assert [m.name for m in of_probe(RANK)] == [f.name for f in dataclasses.fields(RankSummary)]
    assert all(m.doc and m.label and m.direction in ("higher", "lower", "near_one", "near_zero")
               for m in REGISTRY.values())


def test_a_name_is_declared_once():
    with pytest.raises(ValueError, match="twice"):
        _add(Metric("boundary_ratio", GRAD_FLOW, "near_one", "again", "again"))


def test_check_gates_and_baselines_read_the_registry():
    assert set(METRICS) <= set(REGISTRY) and all(METRICS[k] is REGISTRY[k] for k in METRICS)
    assert all(limit.metric in METRICS for limit in LIMITS.values())


def test_values_reads_every_field():
    s = GradFlowSummary(weight_first_last_ratio=1.0, boundary_ratio=2.0, log_growth_per_block=0.5,
                        growth_per_block=1.6, output_grad_norm=0.25, weight_gain_median=3.0)
    assert values(GRAD_FLOW, s) == {"weight_first_last_ratio": 1.0, "boundary_ratio": 2.0,
                                    "log_growth_per_block": 0.5, "growth_per_block": 1.6,
                                    "output_grad_norm": 0.25, "weight_gain_median": 3.0}

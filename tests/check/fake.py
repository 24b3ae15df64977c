"""Hand-made results for the pure tests: no model is run."""

import math

from resdiag.check.result import CheckResult, Gate, ModelRun
from resdiag.results import Finding, Verdict

METRICS = {"boundary_ratio": 2.0, "log_growth_per_block": 0.1, "weight_first_last_ratio": 0.5,
           "feature_erank_retention": 0.9, "feature_erank_ratio_last": 0.8, "rank1_distance_last": 0.4,
           "weight_erank_ratio_min": 0.9, "weight_erank_ratio_median": 0.95}
FINDING = Finding("boundary.vanishing", "vanishing", 1e-5, 1e-4, "ratio 1e-05 < 0.0001", "src")


def run(name="m", verdict="healthy", **metrics) -> ModelRun:
    findings = (FINDING,) if verdict != "healthy" else ()
    verdicts = {"grad-flow": Verdict(verdict, findings), "rank": Verdict("healthy")}
    fingerprint = {"name": "resnet8", "parameters": 10, "config": {"plain": False}}
    return ModelRun(name, fingerprint, {**METRICS, **metrics}, verdicts)


def result(gates=(), warnings=(), runs=None) -> CheckResult:
    return CheckResult("0.1.0", "2.13.0", 0, "cpu", 1, tuple(runs or (run(),)), tuple(gates), tuple(warnings))


def gate(model="m", name="max_boundary_ratio", passed=True, message="boundary_ratio = 2 <= 10") -> Gate:
    return Gate(model, name, "limit", 2.0 if passed else math.inf, "<= 10", passed, message)

"""Issue 10, item 4: a threshold or gate outside its range would switch its rule off, so it is refused.

Parametrized over the declared lists (the threshold dataclasses' fields, the CLI's threshold options,
the gate keys of resdiag/check/metrics.py): a new threshold or gate is tested the moment it exists.
The out-of-range values are built here from each range's end points, not taken from the code under
test's messages.
"""

from __future__ import annotations

import dataclasses
import math

import typing

import pytest

from resdiag.check.config import load_config
from resdiag.check.metrics import LIMITS, METRICS
from resdiag.cli.app import app
from resdiag.diagnosis.thresholds import GradThresholds, RankThresholds
from resdiag.errors import ResdiagError
from resdiag.thresholds_schema import (FINITE, FRACTION, GROWTH, METRIC_RANGES, OPTION_RANGES, POSITIVE,
                                       THRESHOLD_RULES, Range, check_option)
from tests.helpers import invoke_out

CLASSES = {"GradThresholds": GradThresholds, "RankThresholds": RankThresholds}
COMMAND = {"GradThresholds": "grad-flow", "RankThresholds": "rank"}
TINY = ["--arch", "resnet8", "--width", "0.25", "--input-shape", "3,8,8", "--batch-size", "4",
        "--device", "cpu"]
# Float options of grad-flow and rank that are not verdict thresholds: the zoo's variant options
# (checked by resdiag.zoo) and the numerical-rank tolerances (OPTION_RANGES).
NOT_THRESHOLDS = {"--width", "--init-gain", "--branch-gain", *OPTION_RANGES}


def outside(r: Range) -> list[float]:
    """NaN, the infinities, a negative number where the range is non-negative, and just past each
    finite end (the end itself where it is open)."""
    values = [math.nan, math.inf, -math.inf]
    if math.isfinite(r.low):
        values += [r.low - 1.0] + ([r.low] if r.low_open else [])
        if r.low >= 0:
            values.append(-1e-3)
    if math.isfinite(r.high):
        values += [r.high * 1.5 + 1.0] + ([r.high] if r.high_open else [])
    return sorted(set(values), key=repr)


def inside(r: Range) -> list[float]:
    values = [v for v in (-5.0, 1e-12, 0.5, 1.0, 70.0) if r.contains(v)]
    if math.isfinite(r.low) and not r.low_open:
        values.append(r.low)
    if math.isfinite(r.high) and not r.high_open:
        values.append(r.high)
    return values


FIELDS = [(cls, field) for cls, rules in THRESHOLD_RULES.items() for field in rules]
BAD_FIELDS = [(cls, field, v) for cls, field in FIELDS for v in outside(THRESHOLD_RULES[cls][field].range)]
OPTIONS = [(cls, field, rule.option) for cls, rules in THRESHOLD_RULES.items()
           for field, rule in rules.items() if rule.option]
BAD_OPTIONS = [(cls, option, v) for cls, _, option in OPTIONS for v in outside(THRESHOLD_RULES[cls][_].range)]
BAD_GATES = [(key, v) for key, limit in LIMITS.items() for v in outside(METRIC_RANGES[limit.metric])]


def test_range_semantics_by_hand():
    assert [FRACTION.contains(v) for v in (0.0, 1e-300, 1.0, 1.0000001, math.nan)] == [False, True, True,
                                                                                       False, False]
    assert [GROWTH.contains(v) for v in (0.999, 1.0, 1e300, math.inf)] == [False, True, True, False]
    assert [POSITIVE.contains(v) for v in (0.0, -1.0, 5e-324, 1e308)] == [False, False, True, True]
    assert [FINITE.contains(v) for v in (-1e308, 0.0, math.inf, -math.inf)] == [True, True, False, False]
    assert (FRACTION.text(), GROWTH.text(), POSITIVE.text(), FINITE.text()) == (
        "a finite number in (0, 1]", "a finite number ≥ 1", "a finite number > 0", "a finite number")
    assert FRACTION.problem(True) == "must be a finite number in (0, 1], got True"


@pytest.mark.parametrize("cls", list(CLASSES.values()), ids=list(CLASSES))
def test_every_threshold_field_has_a_range_and_the_defaults_lie_in_it(cls):
    rules = THRESHOLD_RULES[cls.__name__]
    assert {f.name for f in dataclasses.fields(cls)} == set(rules)
    t = cls()
    for name, rule in rules.items():
        assert rule.range.contains(getattr(t, name)), name


@pytest.mark.parametrize("cls, field, value", BAD_FIELDS)
def test_a_threshold_out_of_range_is_refused(cls, field, value):
    with pytest.raises(ResdiagError) as exc:
        CLASSES[cls](**{field: value})
    message = str(exc.value)
    assert f"{cls}.{field}" in message and "\n" not in message


@pytest.mark.parametrize("cls, field", FIELDS)
def test_a_threshold_in_range_is_kept(cls, field):
    for value in inside(THRESHOLD_RULES[cls][field].range):
        if cls == "GradThresholds" and field in ("vanish_ratio", "at_vanish_ratio") and value >= 1:
            continue  # the exploding threshold's default is above; only vanish == explode == 1 is refused
        assert getattr(CLASSES[cls](**{field: value}), field) == value


def test_vanishing_must_stay_below_exploding():
    with pytest.raises(ResdiagError, match="thresholds must satisfy --vanish-ratio .* < --explode-ratio"):
        GradThresholds(vanish_ratio=1.0, explode_ratio=1.0)
    with pytest.raises(ResdiagError, match="at_vanish_ratio < threshold GradThresholds.at_explode_ratio, got 1 and 1"):
        GradThresholds(at_vanish_ratio=1.0, at_explode_ratio=1.0)
    assert GradThresholds(vanish_ratio=1.0, explode_ratio=1.0000001).explode_ratio == 1.0000001


@pytest.mark.parametrize("command", ["grad-flow", "rank"])
def test_every_float_option_is_a_declared_threshold_or_known_not_to_be_one(command):
    (callback,) = [c.callback for c in app.registered_commands if (c.name or c.callback.__name__) == command]
    floats = set()
    for hint in typing.get_type_hints(callback, include_extras=True).values():
        if typing.get_origin(hint) is typing.Annotated and float in {hint.__origin__, *typing.get_args(
                hint.__origin__)}:
            for info in hint.__metadata__:  # typer.Option("--name", ...) keeps "--name" as .default
                decls = [info.default, *info.param_decls]
                floats |= {d for d in decls if isinstance(d, str) and d.startswith("--")}
    declared = {option for cls, _, option in OPTIONS if COMMAND[cls] == command}
    assert declared <= floats
    assert floats - declared <= NOT_THRESHOLDS, floats - declared - NOT_THRESHOLDS


@pytest.mark.parametrize("cls, option, value", BAD_OPTIONS)
def test_the_cli_refuses_a_threshold_out_of_range(cls, option, value):
    """``resdiag rank --min-retention nan --strict`` used to pass with every collapse rule off."""
    args = [COMMAND[cls], *TINY, "--strict", f"{option}={value!r}"]
    code, out, err = invoke_out(args)
    assert code == 2, (args, code, err)
    assert err.startswith("resdiag: error: ") and err.count("\n") == 1 and option in err, err
    assert out == ""


@pytest.mark.parametrize("option", list(OPTION_RANGES))
def test_numerical_rank_tolerances_out_of_range_are_refused(option):
    assert check_option(option, None) is None and check_option(option, 0.0) is None
    for value in outside(OPTION_RANGES[option]):
        with pytest.raises(ResdiagError, match=f"^{option} must be a finite number"):
            check_option(option, value)


@pytest.mark.xfail(strict=True, reason="resdiag/cli/app.py (spine) does not call check_option yet: "
                   "rank --rtol inf measures every numerical rank as 0 and exits 0")
@pytest.mark.parametrize("option", list(OPTION_RANGES))
def test_the_cli_refuses_a_numerical_rank_tolerance_out_of_range(option):
    code, _, err = invoke_out(["rank", *TINY, f"{option}=inf"])
    assert code == 2 and option in err, err


# ---- check config gates -------------------------------------------------------------------------

MODEL = '[[models]]\nname = "m"\narch = "resnet8"\n'


def _toml(value: float) -> str:
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)


def _load(tmp_path, text):
    path = tmp_path / "resdiag.toml"
    path.write_text(text)
    return load_config(path)


def test_every_metric_has_a_range_and_every_gate_default_lies_in_it():
    assert set(METRIC_RANGES) == set(METRICS)
    for key, limit in LIMITS.items():
        assert limit.default is None or METRIC_RANGES[limit.metric].contains(limit.default), key


@pytest.mark.parametrize("where", ["top", "model"])
@pytest.mark.parametrize("key, value", BAD_GATES)
def test_a_gate_out_of_range_is_refused_naming_the_key(tmp_path, key, value, where):
    line = f"{key} = {_toml(value)}"
    text = f"[gates]\n{line}\n{MODEL}" if where == "top" else f"{MODEL}gates = {{ {line} }}\n"
    with pytest.raises(ResdiagError) as exc:
        _load(tmp_path, text)
    name = f"gates.{key}" if where == "top" else f"models.m.gates.{key}"
    assert str(exc.value).startswith(f"{tmp_path / 'resdiag.toml'}: {name}: must be a finite number")


@pytest.mark.parametrize("key", list(LIMITS))
def test_a_gate_in_range_or_false_is_kept(tmp_path, key):
    others = "".join(f"{k} = false\n" for k in LIMITS if k != key)  # no min above a max
    off = dict(_load(tmp_path, f"[gates]\n{key} = false\n{MODEL}").models[0].gates.limits)
    assert key not in off
    for value in inside(METRIC_RANGES[LIMITS[key].metric]):
        cfg = _load(tmp_path, f"[gates]\n{others}{key} = {value!r}\n{MODEL}")
        assert cfg.models[0].gates.limits == ((key, value),)

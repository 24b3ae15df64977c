import json
import math

import pytest

from resdiag.check.baseline import baseline_dict, compare, read_baseline, warnings, write_baseline
from resdiag.check.tolerance import Tolerance
from resdiag.errors import ResdiagError
from tests.check.fake import METRICS, result, run

TOL = {name: Tolerance("rel", 0.1) for name in METRICS}


def stored(tmp_path, res=None):
    path = tmp_path / "b.json"
    write_baseline(path, res or result())
    return read_baseline(path)


def test_round_trip_and_format(tmp_path):
    base = stored(tmp_path, result(runs=[run(boundary_ratio=math.nan)]))
    d = json.loads((tmp_path / "b.json").read_text())
    assert d == baseline_dict(result(runs=[run(boundary_ratio=math.nan)]))
    assert list(d) == ["schema", "schema_version", "resdiag_version", "torch_version", "device", "seed",
                       "threads", "models"]
    assert d["models"]["m"]["metrics"]["boundary_ratio"] == "NaN"
    assert math.isnan(base.models["m"]["metrics"]["boundary_ratio"])
    assert [g.passed for g in compare(run(boundary_ratio=math.nan), base, TOL)] == [True] * len(METRICS)


def test_compare_within_and_beyond_tolerance(tmp_path):
    base = stored(tmp_path)
    assert all(g.passed for g in compare(run(boundary_ratio=2.2), base, TOL))
    gates = compare(run(boundary_ratio=2.3), base, TOL)
    (bad,) = [g for g in gates if not g.passed]
    assert bad.id == "m.baseline.boundary_ratio" and bad.limit == "2 ± 10%" and bad.kind == "baseline"
    assert bad.message == "boundary_ratio = 2.3, baseline 2 ± 10%: outside the tolerance (rel:10%)"


def test_missing_model_or_metric_fails(tmp_path):
    base = stored(tmp_path)
    (g,) = compare(run("new"), base, TOL)
    assert not g.passed and "not in the baseline" in g.message and g.id == "new.baseline"
    del base.models["m"]["metrics"]["rank1_distance_last"]
    bad = [g.name for g in compare(run(), base, TOL) if not g.passed]
    assert bad == ["baseline.rank1_distance_last"]


def test_warnings_for_versions_fingerprints_and_extra_models(tmp_path):
    base = stored(tmp_path, result(runs=[run(), run("old")]))
    assert warnings(result(), base) == [f"the baseline {base.path} has models the config does not check: old"]
    changed = run()
    changed.fingerprint["config"]["plain"] = True
    newer = result(runs=[changed])
    newer = type(newer)(**{**newer.__dict__, "torch_version": "9.0"})
    w = warnings(newer, base)
    assert "made with resdiag 0.1.0, torch 2.13.0 on cpu (seed 0, 1 threads)" in w[0] and "torch 9.0" in w[0]
    assert w[1] == "model 'm' differs from its baseline: config.plain false -> true"


@pytest.mark.parametrize("text, message", [
    ("{", "cannot read baseline"),
    ("[]", "is not a resdiag baseline"),
    ('{"schema": "resdiag.check"}', "is not a resdiag baseline"),
    ('{"schema": "resdiag.baseline", "schema_version": 2}', "schema_version 2"),
    ('{"schema": "resdiag.baseline", "schema_version": 1, "models": {}}', "malformed baseline"),
    ('{"schema": "resdiag.baseline", "schema_version": 1, "resdiag_version": "0", "torch_version": "0", '
     '"device": "cpu", "seed": 0, "models": {"m": {"metrics": {}}}}', "malformed baseline"),
])
def test_bad_baseline_files(tmp_path, text, message):
    path = tmp_path / "b.json"
    path.write_text(text)
    with pytest.raises(ResdiagError, match=message):
        read_baseline(path)
    with pytest.raises(ResdiagError, match="baseline file not found"):
        read_baseline(tmp_path / "none.json")

import json
from dataclasses import replace

import pytest

from resdiag.claims.budget import BUDGETS, QUICK
from resdiag.claims.gradients import c2
from resdiag.claims.report import run_claims, write_report
from resdiag.claims.row import VERDICTS
from tests.helpers import invoke

TINY = replace(QUICK, c1_depths=(8, 14), grad_batches=1, grad_batch_size=4, grad_image=8, rank_batch_size=16,
               c2_mlp_depth=16, c2_resnet_depth=8, train_depth=8, c5_depths=(8, 14), steps=3, batch_size=8,
               synthetic_size=16, seeds=(0, 1))  # two seeds: the least that gives a spread


def test_all_eight_rows_with_numbers_and_report(tmp_path):
    rows, seconds = run_claims(TINY, tmp_path, "synthetic")
    assert [r.id for r in rows] == [f"C{i}" for i in range(1, 9)]
    assert all(r.verdict in VERDICTS and r.measured and r.evidence for r in rows)
    # synthetic data has no held-out split: the test-error claims cannot be judged
    assert {r.id: r.verdict for r in rows}["C3"] == "inconclusive"
    files = write_report(rows, TINY, tmp_path, seconds, "resdiag claims (test)", "synthetic")
    md = (tmp_path / "claims.md").read_text()
    assert all(f"| C{i} |" in md for i in range(1, 9)) and "![C1](c1.png)" in md
    assert " ± " in md and "`synthetic`" in md
    payload = json.loads((tmp_path / "claims.json").read_text())
    assert payload["schema"] == "resdiag.claims" and payload["data"] == "synthetic"
    assert {p.name for p in files} >= {"c1.png", "c2.png", "c3.png", "c4.png", "c5.png"}


def test_c2_default_branch_slopes_follow_the_prediction():
    row = c2(replace(TINY, c2_mlp_depth=32))
    assert row.verdict == "supported"
    for numbers in row.numbers.values():
        assert abs(numbers["mlp_default_branch"]["mean"] - numbers["predicted"]) <= 0.01


def test_every_budget_runs_at_least_three_seeds():
    assert all(len(b.seeds) >= 3 for b in BUDGETS.values())


def test_cli_bad_budget_writes_nothing(tmp_path):
    code, err = invoke(["claims", "--out", str(tmp_path / "c"), "--budget", "huge"])
    assert code == 2 and "unknown --budget" in err and not (tmp_path / "c").exists()


@pytest.mark.parametrize("budget", ["full", "default"])
def test_cli_quick_with_another_budget_is_refused(tmp_path, budget):
    code, err = invoke(["claims", "--quick", "--budget", budget, "--out", str(tmp_path / "c")])
    assert code == 2 and "--quick" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c").exists()

import json
from dataclasses import replace

import pytest

from resdiag.claims.budget import QUICK
from resdiag.claims.gradients import _departure, c2
from resdiag.claims.report import run_claims, write_report
from resdiag.claims.row import VERDICTS
from tests.helpers import invoke

TINY = replace(QUICK, c1_depths=(8, 14), grad_batches=1, grad_batch_size=4, rank_batch_size=16,
               c2_mlp_depth=16, c2_resnet_depth=8, train_depth=8, c5_depths=(8, 14), width=0.25, image=8,
               steps=3, batch_size=8, synthetic_size=16)


def test_all_eight_rows_with_numbers_and_report(tmp_path):
    rows, seconds = run_claims(TINY, tmp_path)
    assert [r.id for r in rows] == [f"C{i}" for i in range(1, 9)]
    assert all(r.verdict in VERDICTS and r.measured and r.evidence for r in rows)
    files = write_report(rows, TINY, tmp_path, seconds, "resdiag claims (test)")
    md = (tmp_path / "claims.md").read_text()
    assert all(f"| C{i} |" in md for i in range(1, 9)) and "![C1](c1.png)" in md
    assert json.loads((tmp_path / "claims.json").read_text())["schema"] == "resdiag.claims"
    assert {p.name for p in files} >= {"c1.png", "c2.png", "c3.png", "c4.png", "c5.png"}


def test_c2_slopes_match_log_lambda_on_pure_residual_mlps():
    row = c2(replace(TINY, c2_mlp_depth=32))
    assert row.verdict == "supported"
    for lam, numbers in row.numbers.items():
        assert numbers["mlp_small_branch_departure"] <= 0.05, lam


def test_departure_measure():
    assert _departure(-0.6931, 0.5) == pytest.approx(0, abs=1e-4)
    assert _departure(0.0, 1.0) == 0 and _departure(0.00476, 1.0) == pytest.approx(0.05, rel=0.01)


def test_cli_bad_budget_writes_nothing(tmp_path):
    code, err = invoke(["claims", "--out", str(tmp_path / "c"), "--budget", "huge"])
    assert code == 2 and "unknown --budget" in err and not (tmp_path / "c").exists()

"""The check, models and claims tables at 200, 80 and 40 columns: no name, number or word is cut."""

import io

import pytest
from rich.console import Console

from resdiag.check.human import print_check
from resdiag.check.result import CheckResult, Gate, fmt
from resdiag.claims.row import ClaimRow
from resdiag.report.listings import claims_table, family_table, preset_table
from resdiag.zoo import FAMILIES

WIDTHS = [200, 80, 40]


def render(width, *items) -> str:
    buf = io.StringIO()
    con = Console(file=buf, width=width, color_system=None, legacy_windows=False)
    for item in items:
        con.print(item)
    return buf.getvalue()


def whole(text: str, width: int, parts) -> None:
    """No cut cell ("…"), no line past the width, and every part present (a part longer than the
    terminal may wrap onto the next line, hence the check on the text without line breaks)."""
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    flat = text.replace("\n", "")
    for part in parts:
        assert part in flat, part


GATES = (Gate("resnet56_postactivation_bn", "baseline.feature_erank_retention", "baseline", 1.2345678e-7,
              "1.235e-07 ± 25%", True, "within tolerance"),
         Gate("plain56", "max_boundary_ratio", "limit", 123456.789, "<= 1000", False, "exploding"),
         Gate("plain56", "verdict.grad-flow", "verdict", "vanishing", "healthy", False, "vanishing"))


@pytest.mark.parametrize("width", WIDTHS)
def test_check_table_is_not_cut(width):
    result = CheckResult("0.1.0", "2.13.0+cpu", 0, "cpu", 2, (), GATES)
    buf = io.StringIO()
    print_check(Console(file=buf, width=width, color_system=None, legacy_windows=False), result)
    parts = [p for g in GATES for p in (g.model, g.name, fmt(g.value), g.limit)] + ["pass", "FAIL"]
    whole(buf.getvalue(), width, parts)


@pytest.mark.parametrize("width", WIDTHS)
def test_models_tables_are_not_cut(width):
    families = list(FAMILIES.values())
    presets = [("resnet1202", "basic", "19.42M"), ("preact_resnet1001_bottleneck", "bottleneck", "10.33M")]
    text = render(width, family_table(families), preset_table(presets))
    words = [w for f in families for w in f"{f.name} {f.depths} {f.doc}".split()]
    whole(text, width, words + [p for row in presets for p in row])
    if width == 200:
        assert "┃ family" in text  # the full table where it fits


@pytest.mark.parametrize("width", WIDTHS)
def test_claims_table_is_not_cut(width):
    rows = [ClaimRow("C1", "residual nets keep the gradient from vanishing with depth",
                     "plain-56 ratio 1.234e-05, resnet-56 ratio 0.8765", "supported", ""),
            ClaimRow("C4", "a deeper plain net has a higher training error", "error 12.3% vs 45.6% (±1.2)",
                     "inconclusive", "")]
    text = render(width, claims_table(rows, "claims (quick budget, data digits, 85 s)"))
    whole(text, width, [w for r in rows for w in f"{r.id} {r.claim} {r.measured} {r.verdict}".split()])

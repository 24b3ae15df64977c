"""Tables readable at 80 and 40 columns: no layer name and no number is cut ("…")."""

import io

import pytest
from rich.console import Console

from resdiag.report.table import compare_table, fmt, grad_flow_tables, print_all, rank_compare_table, rank_tables
from resdiag.run.gradflow import run_grad_flow
from resdiag.run.rank import run_rank
from resdiag.run.target import TargetSpec
from resdiag.zoo import resolve

TINY = dict(width=0.25, input_shape=(3, 8, 8))


@pytest.fixture(scope="module")
def results():
    cfgs = [resolve("resnet", 8, **TINY), resolve("resnet", 8, plain=True, **TINY)]
    grads = [run_grad_flow(TargetSpec(arch=c), batches=1, batch_size=4, device="cpu") for c in cfgs]
    ranks = [run_rank(TargetSpec(arch=c), batch_size=8, device="cpu") for c in cfgs]
    return grads, ranks


def render(items, width):
    buf = io.StringIO()
    print_all(Console(file=buf, width=width, color_system=None, legacy_windows=False), items)
    return buf.getvalue()


@pytest.mark.parametrize("width", [160, 80, 40])
def test_no_name_or_number_is_cut(results, width):
    grads, ranks = results
    g, r = grads[0], ranks[0]
    text = render(grad_flow_tables(g) + rank_tables(r) + compare_table(grads) + rank_compare_table(ranks),
                  width)
    assert "…" not in text
    flat = text.replace("\n", "")  # a name longer than the terminal wraps onto the next line
    for name in [x.name for x in g.layers] + [b.name for b in g.boundaries] + [w.name for w in r.weights]:
        assert name in flat
    for value in [x.grad_norm for x in g.layers] + [b.relative for b in g.boundaries] + \
                 [f.erank_ratio for f in r.features] + [w.stable_rank for w in r.weights]:
        assert fmt(value) in flat
    assert max(len(line) for line in text.splitlines()) <= width


def test_full_table_when_it_fits(results):
    text = render(grad_flow_tables(results[0][0]), 200)
    assert "log scale" in text and "± std" in text and "shape" in text


@pytest.mark.parametrize("width", [200, 80, 40])
def test_sweep_table_is_not_cut(width):
    from resdiag.report.sweep import COLUMNS, sweep_table

    row = {"variant": "postln_plain_transformer (own)", "depth": 48, "seeds": 3,
           "verdicts": ["grad-flow:healthy", "rank:collapse"]}
    for i, (key, _) in enumerate(COLUMNS):
        row |= {key: 1.2345e-7 * (i + 1), f"{key}_min": 1e-8, f"{key}_max": 3.25e-6}
    text = render([sweep_table([row])], width)
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= width
    flat = text.replace("\n", "")
    for part in ["postln_plain_transformer (own)", "48", fmt(1.2345e-7), fmt(3.25e-6), "rank:collapse"]:
        assert part in flat

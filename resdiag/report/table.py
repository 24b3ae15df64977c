"""Rich tables and verdict panels for grad-flow results. Only reports and the CLI know rich."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text

from resdiag.report.fit import Column, FitTable
from resdiag.results import GradFlowResult, Verdict

BAR_WIDTH = 24
STYLE = {"healthy": "green", "inconclusive": "magenta", "vanishing": "yellow", "exploding": "red",
         "collapse": "red", "non_finite": "red"}


def fmt(x: float) -> str:
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return f"{x:.3g}"


def log_bar(value: float, lo: float, hi: float, width: int = BAR_WIDTH) -> Text:
    """A bar whose length is linear in log10(value) between log10(lo) and log10(hi)."""
    if not math.isfinite(value):
        return Text("non-finite", style="bold red")
    if value <= 0:
        return Text("")
    span = math.log10(hi) - math.log10(lo) if hi > lo > 0 else 0.0
    frac = 1.0 if span == 0 else (math.log10(value) - math.log10(lo)) / span
    eighths = round(max(0.0, min(1.0, frac)) * width * 8)
    full, rest = divmod(eighths, 8)
    return Text("█" * full + ("▏▎▍▌▋▊▉"[rest - 1] if rest else ""), style="cyan")


def bounds(values: Sequence[float]) -> tuple[float, float]:
    ok = [v for v in values if math.isfinite(v) and v > 0]
    return (min(ok), max(ok)) if ok else (1.0, 1.0)


def pick_rows(n: int, limit: int | None) -> list[int]:
    """All rows, or ``limit`` rows evenly spread with the first and last always shown."""
    if limit is None or n <= limit:
        return list(range(n))
    if limit < 2:
        return [n - 1]
    return sorted({round(i * (n - 1) / (limit - 1)) for i in range(limit)})


def verdict_panel(verdict: Verdict, title: str) -> Panel:
    style = STYLE.get(verdict.status, "yellow")
    lines = [Text(verdict.status.upper(), style=f"bold {style}")]
    for f in verdict.findings:
        lines.append(Text(f"• [{f.rule}] {f.message}", style=STYLE.get(f.status, "yellow")))
        lines.append(Text(f"  source: {f.source}", style="dim"))
    if not verdict.findings:
        lines.append(Text("no rule fired", style="dim"))
    scope = verdict.scope.line() if verdict.scope is not None else ""
    if scope:
        lines.append(Text(f"scope: {scope}", style="dim"))
    return Panel(Group(*lines), title=title, border_style=style, expand=False)


def grad_flow_tables(result: GradFlowResult, rows: int | None = 60) -> list:
    m, s = result.model, result.summary
    title = f"{m.name} · {m.parameters:,} parameters · {result.run.batches}×{result.run.batch_size} " \
            f"{result.run.data} on {result.run.device}"
    lo, hi = bounds([x.grad_norm for x in result.boundaries])
    bt = FitTable(f"activation gradients ||dE/dx_l||  ({title})", [
        Column("l"), Column("boundary", "left"), Column("shape", drop=3), Column("||dE/dx_l||"),
        Column("± std", drop=2), Column("/ x_L"), Column("log scale", "left", drop=1)])
    for i in pick_rows(len(result.boundaries), rows):
        b = result.boundaries[i]
        bt.add_row(str(b.index), b.name, "×".join(map(str, b.shape)), fmt(b.grad_norm),
                   fmt(b.grad_norm_std), fmt(b.relative), log_bar(b.grad_norm, lo, hi))
    lo, hi = bounds([x.grad_norm for x in result.layers])
    lt = FitTable("weight gradients ||dE/dW|| per conv/linear layer", [
        Column("#"), Column("layer", "left"), Column("shape", drop=3), Column("||dE/dW||"),
        Column("± std", drop=2), Column("/ last"), Column("/ ||W||", drop=4), Column("log scale", "left", drop=1)])
    for i in pick_rows(len(result.layers), rows):
        x = result.layers[i]
        if x.frozen and not x.has_grad:  # not a missing number: the user froze it
            lt.add_row(str(x.index), x.name, "×".join(map(str, x.shape)), "frozen", "", "", "", "")
            continue
        lt.add_row(str(x.index), x.name, "×".join(map(str, x.shape)), fmt(x.grad_norm),
                   fmt(x.grad_norm_std), fmt(x.relative), fmt(x.ratio), log_bar(x.grad_norm, lo, hi))
    summary = Text(
        f"||dE/dx_0|| / ||dE/dx_L|| = {fmt(s.boundary_ratio)}   fitted growth per block toward "
        f"the input = {fmt(s.growth_per_block)}   first/last weight-gradient ratio = "
        f"{fmt(s.weight_first_last_ratio)}   loss = {fmt(result.run.loss)}"
    )
    return [lt, bt, summary, verdict_panel(result.verdict, f"verdict: {m.name}")]


def compare_table(results: Sequence[GradFlowResult], rows: int | None = 60) -> list:
    """One table of ||dE/dx_l|| for several models of the same depth, side by side."""
    lo, hi = bounds([b.relative for r in results for b in r.boundaries])
    return _side_by_side(
        results, rows, "activation gradients ||dE/dx_l|| relative to x_L",
        lambda r: [b.relative for b in r.boundaries], lambda v: log_bar(v, lo, hi),
        lambda r: f"x_0/x_L = {fmt(r.summary.boundary_ratio)}",
    )


def _side_by_side(results, rows, title, values, bar, label) -> list:
    """A column of values and a bar per model, one row per boundary, then each verdict panel."""
    columns = [Column("l")]
    for r in results:
        columns += [Column(r.model.name), Column("", "left", drop=1)]
    t = FitTable(title, columns)
    values_ = [values(r) for r in results]
    for i in pick_rows(max(len(c) for c in values_), rows):
        cells = [str(i)]
        for col in values_:
            cells += [fmt(col[i]), bar(col[i])] if i < len(col) else ["", ""]
        t.add_row(*cells)
    return [t] + [verdict_panel(r.verdict, f"verdict: {r.model.name}  ({label(r)})") for r in results]


def print_all(console: Console, items: list) -> None:
    for item in items:
        console.print(item)


def rank_tables(result, rows: int | None = 60) -> list:
    """Weight-spectrum table, feature-rank table, summary line and verdict panel of a RankResult."""
    m, s = result.model, result.summary
    wt = FitTable(f"weight matrices ({result.conv} convention)  {m.name} · {m.parameters:,} parameters"
                  + (f" · checkpoint {result.checkpoint}" if result.checkpoint else " · initialisation"), [
        Column("#"), Column("layer", "left"), Column("matrix", drop=3), Column("erank", drop=4),
        Column("erank/min(m,n)"), Column("stable rank"), Column("num. rank", drop=5),
        Column("||W||_2", drop=6), Column("cond", drop=2), Column("erank ratio", "left", drop=1)])
    for i in pick_rows(len(result.weights), rows):
        w = result.weights[i]
        matrix = ("×".join(map(str, w.matrix_shape)) + (f" ×{w.num_matrices}" if w.num_matrices > 1 else ""))
        wt.add_row(str(w.index), w.name, matrix, fmt(w.erank), fmt(w.erank_ratio), fmt(w.stable_rank),
                   fmt(w.numerical_rank), fmt(w.spectral_norm), fmt(w.condition_number),
                   _lin_bar(w.erank_ratio))
    ft = FitTable(f"features x_l over {result.run.batch_size} {result.run.data} inputs "
                  f"({result.run.mode} mode, centred)", [
        Column("l"), Column("boundary", "left"), Column("erank", drop=4), Column("erank/ceiling"),
        Column("rank-1 dist."), Column("Dong res.", drop=5), Column("std x_l", drop=3),
        Column("std F(x_l)", drop=2), Column("erank ratio", "left", drop=1)])
    for i in pick_rows(len(result.features), rows):
        f = result.features[i]
        ft.add_row(str(f.index), f.name, fmt(f.erank), fmt(f.erank_ratio), fmt(f.rank1_distance),
                   fmt(f.dong_residual), fmt(f.response_std), fmt(f.branch_std), _lin_bar(f.erank_ratio))
    summary = Text(
        f"feature erank ratio x_0 → x_L: {fmt(s.feature_erank_ratio_first)} → "
        f"{fmt(s.feature_erank_ratio_last)} (retention {fmt(s.feature_erank_retention)})   "
        f"rank-1 distance at x_L {fmt(s.rank1_distance_last)}   weight erank ratio min/median "
        f"{fmt(s.weight_erank_ratio_min)}/{fmt(s.weight_erank_ratio_median)}"
    )
    return [wt, ft, summary, verdict_panel(result.verdict, f"verdict: {m.name}")]


def rank_compare_table(results, rows: int | None = 60) -> list:
    """Feature erank ratio per x_l for several models of the same depth, side by side."""
    return _side_by_side(
        results, rows, "feature erank ratio per x_l (1 = full rank, 0 = collapsed)",
        lambda r: [f.erank_ratio for f in r.features], _lin_bar,
        lambda r: f"retention {fmt(r.summary.feature_erank_retention)}",
    )


def _lin_bar(frac: float, width: int = 16) -> Text:
    if not math.isfinite(frac):
        return Text("non-finite", style="bold red")
    eighths = round(max(0.0, min(1.0, frac)) * width * 8)
    full, rest = divmod(eighths, 8)
    return Text("█" * full + ("▏▎▍▌▋▊▉"[rest - 1] if rest else ""), style="magenta")

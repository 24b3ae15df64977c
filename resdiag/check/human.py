"""The human output of ``resdiag check``: one rich table of gates, then a one-line summary."""

from __future__ import annotations

from resdiag.check.result import CheckResult, fmt


def check_table(result: CheckResult):
    """A rich Table: model, gate, measured value, limit, pass/FAIL; failures in red."""
    from rich.table import Table

    t = Table(title=f"resdiag check (seed {result.seed}, {result.device}, {result.threads} threads, "
                    f"torch {result.torch_version})")
    for col, style in (("model", "bold"), ("gate", None), ("value", None), ("limit", None), ("result", None)):
        t.add_column(col, style=style, overflow="fold", justify="right" if col == "value" else "left")
    for g in result.gates:
        mark = "[green]pass[/]" if g.passed else "[bold red]FAIL[/]"
        t.add_row(g.model, g.name, fmt(g.value), g.limit, mark)
    return t


def summary_line(result: CheckResult) -> str:
    n, bad = len(result.gates), result.failed
    if not bad:
        return f"[green]all {n} gates passed[/]"
    lines = [f"[bold red]{len(bad)} of {n} gates failed:[/]"]
    lines += [f"  {g.id}: {g.message}" for g in bad]
    return "\n".join(lines)


def print_check(console, result: CheckResult) -> None:
    console.print(check_table(result))
    console.print(summary_line(result), highlight=False, markup=True)

"""The human output of ``resdiag check``: a table of gates per model, then a summary."""

from __future__ import annotations

from resdiag.check.result import CheckResult, fmt


def check_tables(result: CheckResult) -> list:
    """One table per model: gate, measured value, limit, pass/FAIL (failures in red). Readable at any
    width, no name or number cut (resdiag.report.fit): at 80 columns the limits wrap between words,
    at 40 each gate is a block of lines."""
    from rich.text import Text

    from resdiag.report.fit import Column, FitTable

    tables: dict[str, FitTable] = {}
    for g in result.gates:
        if g.model not in tables:
            tables[g.model] = FitTable(f"model {g.model}", [
                Column("gate", "left"), Column("value"), Column("limit", "left", wrap=True),
                Column("result", "left")])
        mark = Text("pass", style="green") if g.passed else Text("FAIL", style="bold red")
        tables[g.model].add_row(g.name, fmt(g.value), g.limit, mark)
    return list(tables.values())


def title(result: CheckResult) -> str:
    return (f"resdiag check (seed {result.seed}, {result.device}, {result.threads} threads, "
            f"torch {result.torch_version})")


def summary_line(result: CheckResult) -> str:
    n, bad = len(result.gates), result.failed
    if not bad:
        return f"[green]all {n} gates passed[/]"
    lines = [f"[bold red]{len(bad)} of {n} gates failed:[/]"]
    lines += [f"  {g.id}: {g.message}" for g in bad]
    return "\n".join(lines)


def print_check(console, result: CheckResult) -> None:
    console.print(title(result), style="bold", highlight=False)
    for table in check_tables(result):
        console.print(table)
    console.print(summary_line(result), highlight=False, markup=True)

"""The tables of ``resdiag models`` and ``resdiag claims``: readable at any width, no name, number or
word cut (resdiag.report.fit)."""

from __future__ import annotations

from rich.text import Text

from resdiag.report.fit import Column, FitTable

VERDICT_STYLE = {"supported": "green", "mixed": "yellow", "not supported": "red", "inconclusive": "blue"}


def family_table(families) -> FitTable:
    """One row per registered family (``resdiag.zoo.FAMILIES``' values)."""
    t = FitTable("families: NAME (with --depth) or NAME<depth>, e.g. resnet62, plain_mlp1000",
                 [Column("family", "left"), Column("valid depths", "left", wrap=True), Column("default depth"),
                  Column("description", "left", wrap=True)])
    for f in families:
        t.add_row(f.name, f.depths, str(f.default_depth), f.doc)
    return t


def preset_table(presets: list[tuple[str, str, str]]) -> FitTable:
    """One row per registered name: (name, block, parameter count as shown)."""
    t = FitTable("registered names", [Column("name", "left"), Column("block", "left"), Column("parameters")])
    for name, block, count in presets:
        t.add_row(name, block, count)
    return t


def claims_table(rows, title: str) -> FitTable:
    """One row per claim (``resdiag.claims.row.ClaimRow``): id, claim, measured, coloured verdict."""
    t = FitTable(title, [Column("id", "left"), Column("claim", "left", wrap=True),
                         Column("measured", "left", wrap=True), Column("verdict", "left")])
    for r in rows:
        t.add_row(r.id, r.claim, r.measured, Text(r.verdict, style=VERDICT_STYLE.get(r.verdict, "")))
    return t

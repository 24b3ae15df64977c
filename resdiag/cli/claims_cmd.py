"""``resdiag claims``: every claim of the ResNet argument, measured, with a verdict."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from resdiag.cli.common import console, user_errors


def claims(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for claims.md, claims.json, plots, runs.")],
    quick: Annotated[
        bool, typer.Option("--quick", help="The quick budget (about 1.5 CPU-minutes, docs/claims.md).")
    ] = False,
    budget: Annotated[
        str | None,
        typer.Option(
            help="quick | default (about 5.5 CPU-minutes) | full (the papers' depths and "
            "recipe: a GPU) [default]."
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(help="digits (1,797 real 8x8 digits from scikit-learn, the default when it "
                     "imports), synthetic, or cifar10:PATH, for the trainings."),
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu | cuda | auto (default: the budget's).")] = None,
) -> None:
    """Measure C1-C8 (docs/claims.md), print the table and write the Markdown report and plots."""
    with user_errors():
        from dataclasses import replace

        from resdiag.claims.budget import BUDGETS
        from resdiag.claims.report import run_claims, write_report
        from resdiag.data import default_data, parse_data
        from resdiag.errors import ResdiagError
        from resdiag.run.common import resolve_device

        if quick and budget not in (None, "quick"):
            raise ResdiagError(f"--quick and --budget {budget} contradict each other: give one")
        name = "quick" if quick else budget or "default"
        data = data or default_data()
        if name not in BUDGETS:
            raise ResdiagError(f"unknown --budget {budget!r}: use quick, default or full")
        from resdiag.paths import check_out_folder

        check_out_folder("--out", out)  # a folder (or none yet), writable, a link that leads somewhere
        parse_data(data)
        b = BUDGETS[name]
        if device is not None:
            resolve_device(device)
            b = replace(b, device=device)
        out.mkdir(parents=True, exist_ok=True)
        con = console()
        rows, seconds = run_claims(
            b, out, data, progress=lambda s: con.print(f"measuring {s} ...", style="dim")
        )
        command = (
            "resdiag " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "resdiag claims"
        )
        files = write_report(rows, b, out, seconds, command, data)
        from resdiag.report.listings import claims_table

        t = claims_table(rows, f"claims ({b.name} budget, data {data}, {seconds:.0f} s)")
        con.print(t)
        for f in files:
            con.print(f"wrote {f}")

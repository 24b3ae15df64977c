"""``resdiag sweep``: a grid of architectures x depths x variants x seeds, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from resdiag.cli import options as o
from resdiag.cli.common import console, user_errors


def sweep(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the cell files, summary and plots.")],
    families: Annotated[str, typer.Option(help="Comma-separated families (resdiag models).")] = \
        "plain,resnet",
    depths: Annotated[str, typer.Option(help="Comma-separated depths.")] = "20,56",
    norms: Annotated[str, typer.Option(help="Comma-separated: batch, none.")] = "batch",
    shortcuts: Annotated[str, typer.Option(
        help="--shortcut specs, ';'-separated when they contain commas (scale:0.5,0.5;identity)."
    )] = "identity",
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0",
    probes: Annotated[str, typer.Option(help="grad-flow, rank or both.")] = "grad-flow,rank",
    batches: Annotated[int, typer.Option(help="grad-flow mini-batches per cell.")] = 4,
    batch_size: Annotated[int, typer.Option(help="grad-flow mini-batch size.")] = 32,
    rank_batch_size: Annotated[int, typer.Option(help="rank: inputs in the forward pass.")] = 256,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Cells run in parallel processes.")] = 1,
    device: Annotated[str, typer.Option(help="cpu | cuda | auto.")] = "cpu",
    tokens: o.Tokens = None, vocab: o.Vocab = None,
) -> None:
    """Run a grid of cells (one result file each; a rerun computes only missing cells), then print
    and write the combined table (summary.json) and plots (grad_ratio.png, feature_erank.png)."""
    with user_errors():
        from resdiag.errors import ResdiagError
        from resdiag.report.sweep import plot_sweep, sweep_table
        from resdiag.sweep.grid import Grid, parse_list
        from resdiag.sweep.run import run_sweep, summarise, write_summary

        from resdiag.paths import check_out_folder
        from resdiag.run.common import resolve_device

        check_out_folder("--out", out)
        if batches < 1 or batch_size < 1 or rank_batch_size < 2:
            raise ResdiagError("--batches and --batch-size must be >= 1, --rank-batch-size >= 2")
        grid = Grid(parse_list(families, str, "family"), parse_list(depths, int, "depth"),
                    parse_list(norms, str, "norm"), parse_list(shortcuts, str, "shortcut"),
                    parse_list(seeds, int, "seed"), parse_list(probes, str, "probe"),
                    batches, batch_size, rank_batch_size, str(resolve_device(device)),
                    tokens=tokens, vocab=vocab)
        grid.cells()  # validate everything before creating the folder
        con = console()

        def progress(cell, computed: bool) -> None:
            con.print(f"{'ran' if computed else 'kept'} {cell.id}", style="dim" if not computed else None)

        records, skipped = run_sweep(grid, out, jobs, progress)
        rows = summarise(records)
        write_summary(out, grid, rows, skipped)
        con.print(sweep_table(rows))
        for cell, why in skipped:
            con.print(f"skipped {cell.id}: {why}", style="yellow")
        for path in plot_sweep(rows, out):
            con.print(f"wrote {path}")

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
    device: Annotated[str, typer.Option(
        help="cpu | cuda | auto (under torchrun: each rank its own GPU).")] = "cpu",
    tokens: o.Tokens = None, vocab: o.Vocab = None,
    rank_timeout: Annotated[float, typer.Option(
        help="Under torchrun: seconds a silent rank is waited for before the sweep fails.")] = 300.0,
) -> None:
    """Run a grid of cells (one result file each; a rerun computes only missing cells), then print
    and write the combined table (summary.json) and plots (grad_ratio.png, feature_erank.png).
    Under torchrun the ranks share the cells and rank 0 writes the summary (docs/sweep.md)."""
    with user_errors():
        from resdiag.errors import ResdiagError
        from resdiag.report.sweep import plot_sweep, sweep_table
        from resdiag.run.common import resolve_device
        from resdiag.sweep.grid import Grid, parse_list
        from resdiag.sweep.ranks import team, this_job
        from resdiag.sweep.run import TORCHRUN_AND_JOBS, run_sweep, summarise, write_summary
        from resdiag.writes import one_group

        if batches < 1 or batch_size < 1 or rank_batch_size < 2:
            raise ResdiagError("--batches and --batch-size must be >= 1, --rank-batch-size >= 2")
        if not 0 < rank_timeout < 1e7:
            raise ResdiagError(f"--rank-timeout must be a number of seconds in (0, 1e7), got {rank_timeout}")
        grid = Grid(parse_list(families, str, "family"), parse_list(depths, int, "depth"),
                    parse_list(norms, str, "norm"), parse_list(shortcuts, str, "shortcut"),
                    parse_list(seeds, int, "seed"), parse_list(probes, str, "probe"),
                    batches, batch_size, rank_batch_size, str(resolve_device(device)),
                    tokens=tokens, vocab=vocab)
        job = this_job(grid.device)
        if job.active and jobs > 1:
            raise ResdiagError(TORCHRUN_AND_JOBS)
        con = console()
        who = f"[rank {job.rank}] " if job.active else ""

        def progress(cell, computed: bool) -> None:
            con.print(f"{who}{'ran' if computed else 'kept'} {cell.id}",
                      style="dim" if not computed else None, markup=False)

        with team(job, rank_timeout) as t:  # every place written to is checked before any cell runs
            records, skipped = run_sweep(grid, out, jobs, progress, team=t, device=job.device)
            if not t.main:
                return
            rows = summarise(records)
            with one_group():  # the summary and its plots together, or none of them
                write_summary(out, grid, rows, skipped)
                plots = plot_sweep(rows, out)
        con.print(sweep_table(rows))
        for cell, why in skipped:
            con.print(f"skipped {cell.id}: {why}", style="yellow")
        for path in plots:
            con.print(f"wrote {path}")

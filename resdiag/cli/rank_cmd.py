"""``resdiag rank``: parse, one library call per target (``run_rank``), render."""

from __future__ import annotations

import typer

from resdiag.cli import options as o
from resdiag.cli.common import (EXIT_PROBLEM, check_outputs, failing, render, user_errors,
                                user_prints_to_stderr)


@o.model_options
def rank(
    target: o.ModelOptions,
    batch_size: o.BatchSize = 256, seed: o.Seed = 0, device: o.Device = "auto",
    data: o.Data = "synthetic", mode: o.RankMode = None, conv: o.Conv = "flat",
    rtol: o.Rtol = None, atol: o.Atol = None,
    json_out: o.JsonOut = None, plot: o.PlotOut = None, compare: o.Compare = False, rows: o.Rows = 60,
    strict: o.Strict = False,
    min_retention: o.Retention = o.DEFAULT_RANK.feature_retention,
    min_rank1_distance: o.Rank1 = o.DEFAULT_RANK.rank1_distance,
    min_weight_erank: o.WeightErank = o.DEFAULT_RANK.weight_erank_ratio,
) -> None:
    """Weight-matrix ranks per layer and feature ranks per block: diagnose rank collapse."""
    with user_errors():
        from resdiag.data import parse_data
        from resdiag.diagnosis.thresholds import RankThresholds
        from resdiag.report.plot import plot_rank
        from resdiag.report.table import rank_compare_table, rank_tables
        from resdiag.run.rank import run_rank
        from resdiag.thresholds_schema import check_option

        check_outputs(json_out, plot, target)
        check_option("--rtol", rtol)
        check_option("--atol", atol)
        spec = parse_data(data)
        thresholds = RankThresholds(min_retention, min_rank1_distance, min_weight_erank)
        with user_prints_to_stderr():
            results = [run_rank(t, batch_size=batch_size, device=device, data=spec, mode=mode, conv=conv,
                                rtol=rtol, atol=atol, thresholds=thresholds)
                       for t in o.target_specs(target, seed=seed, compare=compare)]
        render(results, compare=compare, rows=rows, json_out=json_out, plot=plot, tables=rank_tables,
               compare_table=rank_compare_table, draw=plot_rank, compare_schema="resdiag.rank-compare")
    if strict and failing(results):
        raise typer.Exit(EXIT_PROBLEM)

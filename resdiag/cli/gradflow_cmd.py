"""``resdiag grad-flow``: parse, one library call per target (``run_grad_flow``), render."""

from __future__ import annotations

import typer

from resdiag.cli import options as o
from resdiag.cli.common import (EXIT_PROBLEM, check_outputs, failing, render, user_errors,
                                user_prints_to_stderr)
from resdiag.errors import ResdiagError


@o.model_options
def grad_flow(
    target: o.ModelOptions,
    batches: o.Batches = 4, batch_size: o.BatchSize = 32, seed: o.Seed = 0, device: o.Device = "auto",
    data: o.Data = "synthetic", mode: o.Mode = "train",
    json_out: o.JsonOut = None, plot: o.PlotOut = None, compare: o.Compare = False, rows: o.Rows = 60,
    strict: o.Strict = False,
    vanish_ratio: o.VanishRatio = o.DEFAULT_GRAD.vanish_ratio,
    explode_ratio: o.ExplodeRatio = o.DEFAULT_GRAD.explode_ratio,
) -> None:
    """Record per-layer gradient norms and diagnose vanishing or exploding gradients."""
    with user_errors():
        from resdiag.data import parse_data
        from resdiag.diagnosis.thresholds import GradThresholds
        from resdiag.report.plot import plot_grad_flow
        from resdiag.report.table import compare_table, grad_flow_tables
        from resdiag.run.gradflow import run_grad_flow

        check_outputs(json_out, plot, target)
        if not (vanish_ratio > 0 and explode_ratio > vanish_ratio):
            raise ResdiagError("thresholds must satisfy 0 < --vanish-ratio < --explode-ratio")
        spec = parse_data(data)
        thresholds = GradThresholds(vanish_ratio=vanish_ratio, explode_ratio=explode_ratio)
        with user_prints_to_stderr():
            results = [run_grad_flow(t, batches=batches, batch_size=batch_size, device=device, data=spec,
                                     mode=mode, thresholds=thresholds)
                       for t in o.target_specs(target, seed=seed, compare=compare)]
        render(results, compare=compare, rows=rows, json_out=json_out, plot=plot, tables=grad_flow_tables,
               compare_table=compare_table, draw=plot_grad_flow, compare_schema="resdiag.grad-flow-compare")
    if strict and failing(results):
        raise typer.Exit(EXIT_PROBLEM)

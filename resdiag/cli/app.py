"""The resdiag command line: a thin layer that parses, makes one library call and renders.

Exit codes: 0 all is well; 1 a check found a problem (``--strict``);
2 a usage or input error (one line on stderr); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import typer

try:  # typer >= 0.23 ships its own copy of click
    from typer import _click as click
except ImportError:  # pragma: no cover - older typer depends on click
    import click

from resdiag.cli import options as o
from resdiag.errors import ResdiagError

app = typer.Typer(
    name="resdiag",
    help="Gradient-flow and rank-collapse diagnostics for deep residual and plain networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # no markdown parser at start-up: --help stays fast
)

EXIT_PROBLEM, EXIT_USAGE, EXIT_INTERRUPT = 1, 2, 130
# typer >= 0.23 raises its own Exit/Abort; older typer re-exports click's.
_EXITS = tuple({typer.Exit, getattr(click.exceptions, "Exit", typer.Exit)})
_ABORTS = tuple({typer.Abort, getattr(click.exceptions, "Abort", typer.Abort), KeyboardInterrupt})


def fail(message: str) -> None:
    sys.stderr.write(f"resdiag: error: {message}\n")


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except ResdiagError as exc:
        fail(str(exc))
        raise typer.Exit(EXIT_USAGE) from None


def console():
    from rich.console import Console

    return Console()


@app.command()
def models() -> None:
    """List the registered architectures and families, and the variant syntax."""
    from rich.table import Table

    from resdiag.zoo import FAMILIES, PRESETS

    t = Table(title="families: NAME (with --depth) or NAME<depth>, e.g. resnet62, plain_mlp1000")
    for col in ("family", "valid depths", "default depth", "description"):
        t.add_column(col)
    for f in FAMILIES.values():
        t.add_row(f.name, f.depths, str(f.default_depth), f.doc)
    p = Table(title="registered names")
    for col in ("name", "block", "parameters"):
        p.add_column(col)
    for name, cfg in PRESETS.items():
        p.add_row(name, getattr(cfg, "block", "linear"), _param_count(cfg))
    out = console()
    out.print(t)
    out.print(p)
    out.print("variants: --shortcut identity | scale:LAM[,F_SCALE] | gate[:B_G] | shortcut_gate[:B_G] | "
              "conv | dropout[:P];  --placement post | bn_after_add | relu_before_add | relu_preact | "
              "preact;  --norm batch | none;  --projection A | B;  --width W;  --plain")


def _param_count(cfg) -> str:
    """Closed-form-free count: build on the meta device, so nothing is allocated."""
    import torch

    from resdiag.zoo import build

    with torch.device("meta"):
        model = build(cfg)
    return f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M"


@app.command("grad-flow")
def grad_flow(
    arch: o.Arch = None, depth: o.Depth = None, plain: o.Plain = False, shortcut: o.ShortcutOpt = None,
    block: o.Block = None, projection: o.Projection = None, placement: o.Placement = None,
    norm: o.Norm = None, width: o.Width = None, num_classes: o.NumClasses = None,
    input_shape: o.InputShape = None, init_gain: o.InitGain = None, branch_gain: o.BranchGain = None,
    model: o.UserModel = None, blocks: o.Blocks = None, checkpoint: o.Checkpoint = None,
    batches: o.Batches = 4, batch_size: o.BatchSize = 32, seed: o.Seed = 0, device: o.Device = "auto",
    data: o.Data = "synthetic", mode: o.Mode = "train", loss: o.Loss = "cross_entropy",
    json_out: o.JsonOut = None, plot: o.PlotOut = None, compare: o.Compare = False, rows: o.Rows = 60,
    strict: o.Strict = False,
    vanish_ratio: o.VanishRatio = o.DEFAULT_GRAD.vanish_ratio,
    explode_ratio: o.ExplodeRatio = o.DEFAULT_GRAD.explode_ratio,
) -> None:
    """Record per-layer gradient norms and diagnose vanishing or exploding gradients."""
    with user_errors():
        from resdiag.data import parse_data
        from resdiag.diagnosis.thresholds import GradThresholds
        from resdiag.report.plot import FORMATS, plot_grad_flow
        from resdiag.report.table import compare_table, grad_flow_tables, print_all
        from resdiag.run.gradflow import grad_flow, grad_flow_config

        o.check_output(json_out, (".json",))
        o.check_output(plot, tuple(FORMATS))
        if not (vanish_ratio > 0 and explode_ratio > vanish_ratio):
            raise ResdiagError("thresholds must satisfy 0 < --vanish-ratio < --explode-ratio")
        spec = parse_data(data)
        found = o.targets(model, arch, depth, plain, shortcut, block, projection, placement, norm, width,
                          num_classes, input_shape, init_gain, branch_gain, compare, checkpoint)
        kw = dict(batches_=batches, batch_size=batch_size, seed=seed, device=device, data=spec, mode=mode,
                  loss=loss,
                  thresholds=GradThresholds(vanish_ratio=vanish_ratio, explode_ratio=explode_ratio),
                  blocks=blocks)
        results = [
            grad_flow_config(cfg, checkpoint=checkpoint, **kw) if cfg else
            grad_flow(user[0], input_shape=user[1], num_classes=user[2], info=user[3], **kw)
            for cfg, user in found
        ]
        limit = rows or None
        if compare:
            items = compare_table(results, limit)
        else:
            items = grad_flow_tables(results[0], limit)
        print_all(console(), items)
        _write(json_out, results, "resdiag.grad-flow-compare", compare)
        if plot:
            plot_grad_flow(results, plot)
    if strict and any(r.verdict.status != "healthy" for r in results):
        raise typer.Exit(EXIT_PROBLEM)


@app.command()
def rank(
    arch: o.Arch = None, depth: o.Depth = None, plain: o.Plain = False, shortcut: o.ShortcutOpt = None,
    block: o.Block = None, projection: o.Projection = None, placement: o.Placement = None,
    norm: o.Norm = None, width: o.Width = None, num_classes: o.NumClasses = None,
    input_shape: o.InputShape = None, init_gain: o.InitGain = None, branch_gain: o.BranchGain = None,
    model: o.UserModel = None, blocks: o.Blocks = None, checkpoint: o.Checkpoint = None,
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
        from resdiag.report.plot import FORMATS, plot_rank
        from resdiag.report.table import print_all, rank_compare_table, rank_tables
        from resdiag.run.rank import rank, rank_config

        o.check_output(json_out, (".json",))
        o.check_output(plot, tuple(FORMATS))
        if rtol is not None and not rtol >= 0 or atol is not None and not atol >= 0:
            raise ResdiagError("--rtol and --atol must be >= 0")
        spec = parse_data(data)
        found = o.targets(model, arch, depth, plain, shortcut, block, projection, placement, norm, width,
                          num_classes, input_shape, init_gain, branch_gain, compare, checkpoint)
        kw = dict(batch_size=batch_size, seed=seed, device=device, data=spec, mode=mode, conv=conv,
                  rtol=rtol, atol=atol, blocks=blocks,
                  thresholds=RankThresholds(min_retention, min_rank1_distance, min_weight_erank))
        results = [
            rank_config(cfg, checkpoint=checkpoint, **kw) if cfg else
            rank(user[0], input_shape=user[1], num_classes=user[2], info=user[3],
                 checkpoint=checkpoint, **kw)
            for cfg, user in found
        ]
        limit = rows or None
        items = rank_compare_table(results, limit) if compare else rank_tables(results[0], limit)
        print_all(console(), items)
        _write(json_out, results, "resdiag.rank-compare", compare)
        if plot:
            plot_rank(results, plot)
    if strict and any(r.verdict.status != "healthy" for r in results):
        raise typer.Exit(EXIT_PROBLEM)


def _write(path, results, compare_schema: str, compare: bool) -> None:
    """The JSON of one result, or of several under a compare wrapper; written atomically."""
    from resdiag.results import atomic_write, dumps

    if path is None:
        return
    payload = results[0].to_dict() if not compare else {
        "schema": compare_schema, "schema_version": 1, "results": [r.to_dict() for r in results]}
    atomic_write(path, dumps(payload))


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line on stderr and exit 2 for usage errors, 130 for Ctrl-C.

    An unexpected exception is a bug or an input resdiag did not foresee: it is reported in one
    line (exit 2) unless RESDIAG_DEBUG=1 is set, which shows the traceback.
    """
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="resdiag", standalone_mode=False)
    except click.exceptions.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx is not None:
            click.echo(exc.ctx.get_help())
            sys.exit(0)
        hint = f" (see 'resdiag {exc.ctx.info_name} --help')" if exc.ctx and exc.ctx.parent else ""
        fail(f"{exc.format_message()}{hint}")
        code = EXIT_USAGE
    except click.exceptions.ClickException as exc:
        fail(exc.format_message())
        code = EXIT_USAGE
    except _EXITS as exc:
        code = exc.exit_code
    except _ABORTS:
        code = EXIT_INTERRUPT
    except Exception as exc:
        if os.environ.get("RESDIAG_DEBUG"):
            raise
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        fail(f"unexpected {type(exc).__name__}: {first} (RESDIAG_DEBUG=1 shows the traceback)")
        code = EXIT_USAGE
    if code == EXIT_INTERRUPT:
        sys.stderr.write("resdiag: interrupted\n")
    sys.exit(code if isinstance(code, int) else 0)
# Commands defined in their own modules register themselves on `app` when imported.
from resdiag.cli import check_cmd, claims_cmd, sweep_cmd, train_cmd  # noqa: E402,F401

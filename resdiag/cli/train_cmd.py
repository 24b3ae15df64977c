"""``resdiag train``: a short training run with periodic probes. Parses options, makes one library
call (``run_training``), renders a progress bar and a summary (docs/train.md).

Launched by ``torchrun`` it trains with DistributedDataParallel; only rank 0 shows the progress
bar and writes files. Exit codes: 0 done, 2 bad input (one line on stderr, nothing written),
130 interrupted (the last complete checkpoint is intact).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from resdiag.cli import options as o
from resdiag.cli.common import user_errors, user_prints_to_stderr

RECIPE = "Recipe (He et al. 2015, section 4.2; default in brackets)"

Steps = Annotated[int | None, typer.Option("--steps", rich_help_panel=RECIPE,
                                           help="Training steps, the budget the schedule scales to [200].")]
TrainBatch = Annotated[int | None, typer.Option(
    "--batch-size", "-b", rich_help_panel=RECIPE,
    help="Global mini-batch, split evenly over torchrun's processes [128].")]
Lr = Annotated[float | None, typer.Option(
    "--lr", rich_help_panel=RECIPE, help="Learning rate, divided by 10 at 50% and 75% of the steps [0.1].")]
Momentum = Annotated[float | None, typer.Option("--momentum", rich_help_panel=RECIPE, help="[0.9]")]
WeightDecay = Annotated[float | None, typer.Option("--weight-decay", rich_help_panel=RECIPE,
                                                   help="On every parameter [1e-4].")]
Warmup = Annotated[int | None, typer.Option(
    "--warmup-steps", rich_help_panel=RECIPE,
    help="Steps at lr 0.01 first [1% of --steps for nets deeper than 100 layers, else 0].")]
TrainSeed = Annotated[int | None, typer.Option(
    "--seed", rich_help_panel=RECIPE, help="Seed of weights, data, order and augmentation [0].")]
TrainData = Annotated[str | None, typer.Option(
    "--data", rich_help_panel=RECIPE,
    help="digits (1,797 real 8x8 digits, scikit-learn), synthetic (2048 noisy class patterns) or "
         "cifar10:PATH (augmented) [digits if scikit-learn imports, else synthetic].")]
RecordEvery = Annotated[int | None, typer.Option(
    "--record-every", rich_help_panel=o.OUTPUT,
    help="Record gradient flow (and ranks) every N steps and on the last [steps/10].")]
Features = Annotated[bool, typer.Option(
    "--features/--no-features", rich_help_panel=o.OUTPUT, help="Also record feature ranks (rank.png).")]
CheckpointEvery = Annotated[int | None, typer.Option(
    "--checkpoint-every", rich_help_panel=o.OUTPUT,
    help="Write DIR/checkpoint.pt (atomically) every N steps and at the end [steps/10].")]
Resume = Annotated[Path | None, typer.Option(
    "--resume", rich_help_panel=o.MODEL,
    help="Continue the run of this checkpoint.pt; the model and recipe come from it.")]
Out = Annotated[Path, typer.Option(
    "--out", "-o", rich_help_panel=o.OUTPUT,
    help="Folder for train.jsonl, loss.png, gradflow.png, rank.png and checkpoint.pt (created).")]
Overwrite = Annotated[bool, typer.Option(
    "--overwrite", rich_help_panel=o.OUTPUT, help="Replace a run already in --out.")]


@o.model_options
def train(
    target: o.ModelOptions,
    out: Out,
    resume: Resume = None,
    steps: Steps = None, batch_size: TrainBatch = None, lr: Lr = None, momentum: Momentum = None,
    weight_decay: WeightDecay = None, warmup_steps: Warmup = None, seed: TrainSeed = None,
    data: TrainData = None, device: o.Device = "auto",
    record_every: RecordEvery = None, features: Features = True, checkpoint_every: CheckpointEvery = None,
    overwrite: Overwrite = False,
) -> None:
    """Train a zoo or user model with He et al.'s recipe; record loss, error and the probes."""
    with user_errors():
        import os

        from resdiag.train import Interrupted, RunOptions, run_training

        spec = None
        if resume is None or target.given():
            # the seed is the recipe's (given, resumed, or 0): run_training sets it on the spec
            spec = o.target_specs(target, seed=seed or 0)[0]
        recipe = dict(steps=steps, batch_size=batch_size, lr=lr, momentum=momentum,
                      weight_decay=weight_decay, warmup_steps=warmup_steps, seed=seed, data=data)
        rank_log = os.environ.get("RESDIAG_RANK_LOG")
        options = RunOptions(out, record_every=record_every, checkpoint_every=checkpoint_every,
                             features=features, blocks=target.blocks, device=device, overwrite=overwrite,
                             rank_log=Path(rank_log) if rank_log else None)
        bar = _Bar()
        try:
            with user_prints_to_stderr():  # stdout carries resdiag's summary alone
                result = run_training(spec, recipe, options, resume=resume, on_step=bar.update)
        except Interrupted as exc:
            bar.stop()
            _interrupted(exc)
            raise
        finally:
            bar.stop()
    if result.main:
        _summary(result)


class _Bar:
    """A rich progress bar on stderr, started by the first step (so an early error prints alone)."""

    def __init__(self):
        self.progress = None

    def update(self, s) -> None:
        if self.progress is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[stats]}"), TimeElapsedColumn(),
                                     TimeRemainingColumn(), console=Console(stderr=True))
            self.progress.start()
            self.task = self.progress.add_task("train", total=s.steps, completed=s.start, stats="")
        mark = " *" if s.recorded else ""
        self.progress.update(self.task, completed=s.step + 1,
                             stats=f"loss {s.loss:.3f}  err {100 * s.error:5.1f}%  lr {s.lr:g}{mark}")

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _interrupted(exc) -> None:
    if exc.checkpoint_step is not None and exc.path is not None:
        sys.stderr.write(f"resdiag: stopped in step {exc.step}; {exc.path} holds step {exc.checkpoint_step}: "
                         f"continue with --resume {exc.path}\n")
    else:
        sys.stderr.write(f"resdiag: stopped in step {exc.step}, before the first checkpoint: nothing of "
                         "this run was kept\n")


def _summary(result) -> None:
    last = result.last
    if last is None:
        print(f"nothing to run: the checkpoint is at step {result.start} of {result.config.steps}")
    else:
        print(f"{result.config.steps} steps ({last.step + 1 - result.start} in this run), "
                  f"{last.time:.1f} s: loss {last.loss:.4f}, training error {100 * last.error:.1f}% "
                  f"(data: {result.config.data})")
    print("wrote " + ", ".join(str(p) for p in result.files))

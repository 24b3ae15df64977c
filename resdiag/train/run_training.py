"""``run_training``: check everything, then train, record and write (docs/train.md).

Every input is checked before the output folder is created: the recipe, the model and its
checkpoint, the data, the split over processes and the folder itself. Only rank 0 creates the
folder and writes into it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from resdiag.data import parse_data
from resdiag.errors import ResdiagError
from resdiag.run.common import check_batch, resolve_device
from resdiag.run.target import Target, TargetSpec, build_target
from resdiag.train import checkpoint as ckpt
from resdiag.train.config import TrainConfig, make_config, merge_resumed
from resdiag.train.data import TrainSet, train_set
from resdiag.paths import same_file
from resdiag.train.folder import WRITTEN, run_folder
from resdiag.run.distributed import Dist, device_for, from_env, process_group, wrap
from resdiag.train.log import FILE, RunLog
from resdiag.train.loop import Job, StepStats, TrainMonitor, run, start_line
from resdiag.train.plots import plot_run

CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class RunOptions:
    """What a run writes and records; unlike TrainConfig, free to change when resuming."""

    out: Path  # the folder for train.jsonl, the figures and checkpoint.pt
    # None: the resumed checkpoint's, else steps / 10
    record_every: int | None = None  # probes every N steps and on the last
    checkpoint_every: int | None = None
    features: bool = True  # also record feature ranks (rank.png)
    blocks: str | None = None  # regular expression picking the blocks (resdiag.probes.layers)
    device: str = "auto"
    overwrite: bool = False  # replace a run already in ``out`` instead of refusing
    plots: bool = True  # draw loss.png, gradflow.png, rank.png at the end (train.jsonl has it all)
    rank_log: Path | None = None  # debugging: every process also writes its lines to rank<r>.jsonl here


@dataclass(frozen=True)
class TrainResult:
    config: TrainConfig
    out: Path
    main: bool  # whether this process is rank 0 (the one that wrote the files)
    start: int
    last: StepStats | None
    files: tuple[Path, ...]
    lines: tuple[dict, ...]  # the JSON lines this process produced (identical on every rank)


def run_training(spec: TargetSpec | None, recipe: dict, options: RunOptions, *, resume: Path | None = None,
                 on_step=None) -> TrainResult:
    """Train the target ``spec`` (None: rebuild the model a ``resume`` checkpoint was written for;
    its seed is the recipe's) with the recipe, overridden by ``recipe``'s non-None values
    (TrainConfig fields). ``on_step(StepStats)`` is called on rank 0 after each step.
    """
    checkpoint = spec.checkpoint if spec is not None else None
    if resume is not None and checkpoint is not None:
        raise ResdiagError("--checkpoint starts a new run from given weights, --resume continues a run: "
                           "give one")
    _check_out(options, resume, checkpoint, recipe.get("data"))
    dist = from_env()
    saved = ckpt.load(resume) if resume is not None else None
    target, ident, config = _model_and_recipe(spec, recipe, saved)
    if config.batch_size % dist.world:
        raise ResdiagError(f"--batch-size {config.batch_size} (global) does not split evenly over "
                           f"{dist.world} processes")
    check_batch(target.model, config.batch_size // dist.world, "train")
    device = device_for(dist, resolve_device(options.device))
    data = _train_set(target, parse_data(config.data), config)
    if len(data) < config.batch_size:
        raise ResdiagError(f"the training set has {len(data)} samples, fewer than --batch-size "
                           f"{config.batch_size}")
    every = saved.every if saved else {}
    record_every = _every(_given(options.record_every, every.get("record")), config.steps, "--record-every")
    checkpoint_every = _every(_given(options.checkpoint_every, every.get("checkpoint")), config.steps,
                              "--checkpoint-every")
    with process_group(dist, device):
        if not dist.main:
            return _train(target, config, options, dist, device, data, saved, ident, record_every,
                          checkpoint_every, on_step)
        continuing = resume is not None and same_file(resume, options.out / CHECKPOINT)
        with run_folder(options.out, replace=options.overwrite and not continuing,
                        checkpoint=CHECKPOINT) as settle:

            def stepped(s):
                settle()  # the new run has its first checkpoint: the run it replaces goes
                if on_step is not None:
                    on_step(s)

            return _train(target, config, options, dist, device, data, saved, ident, record_every,
                          checkpoint_every, stepped)


def _model_and_recipe(spec: TargetSpec | None, recipe: dict, saved):
    """The target (with the resumed weights), its identity, and the recipe (the resumed one)."""
    given = dict(recipe)
    if given.get("data") is not None:
        given["data"] = parse_data(given["data"]).describe()
    seed = given.get("seed")
    seed = seed if seed is not None else saved.config.seed if saved else 0
    if spec is None:
        if saved is None:
            raise ResdiagError("no model: give --arch/--depth, --model, or --resume")
        spec = _resumed_spec(saved)
    target = build_target(dataclasses.replace(spec, seed=seed))
    ident = ckpt.identity(target.info, target.input_shape, target.num_classes)
    if saved is None:
        if given.get("data") is None and target.inputs.kind == "tokens":
            given["data"] = "synthetic"  # digits (the image default) has no token form
        return target, ident, make_config(target.depth, **given)
    from resdiag.run.checkpoint import load_checkpoint

    ckpt.check_identity(saved, ident)
    load_checkpoint(target.model, saved.path)
    return target, ident, merge_resumed(saved.config, given)


def _resumed_spec(saved) -> TargetSpec:
    """The zoo model a checkpoint's identity describes. A user's model is never rebuilt from the
    checkpoint: its ``module:callable`` is data in a file, and resdiag runs only code named on the
    command line (docs/security.md), so ``--model`` must be given again (and must match)."""
    cfg = ckpt.zoo_config(saved.identity)
    if cfg is not None:
        return TargetSpec(arch=cfg)
    name = str(saved.identity.get("name"))[:120]
    raise ResdiagError(f"--resume {saved.path} was written for your model {name!r}: give --model "
                       "(and its --input-shape or --tokens) again; resdiag does not import code named "
                       "inside a checkpoint")


def _train_set(target: Target, data, config: TrainConfig):
    """The training set: train_set's images, or a fixed set of token sequences for token inputs."""
    if target.inputs.kind == "image":
        return train_set(data, target.input_shape, target.num_classes, config.seed, config.synthetic_size,
                         config.augment)
    if target.inputs.kind != "tokens" or data.kind != "synthetic":
        raise ResdiagError(f"resdiag train feeds images or synthetic token ids, not {target.inputs.kind} "
                           f"inputs from {data.describe()}")
    gen = torch.Generator().manual_seed(config.seed)
    n, t = config.synthetic_size, target.inputs.seq_len
    ids = torch.randint(0, target.inputs.vocab, (n, t), generator=gen)
    labels = torch.randint(0, target.num_classes, (n,), generator=gen)
    return TrainSet(ids, labels, config.seed)


def _given(value, saved):
    return value if value is not None else saved


def _every(value: int | None, steps: int, option: str) -> int:
    if value is None:
        return max(1, math.ceil(steps / 10))
    if value < 1:
        raise ResdiagError(f"{option} must be >= 1, got {value}")
    return value


def _check_out(options: RunOptions, resume: Path | None, checkpoint: Path | None, data: str | None) -> None:
    """Before any work: refuse an --out that is a file, that cannot be written, that holds another
    run (unless --overwrite), or in which the run would replace or delete a file it reads."""
    from resdiag.paths import check_out_folder, check_paths

    out = options.out
    check_out_folder("--out", out)
    if options.rank_log is not None:
        check_out_folder("RESDIAG_RANK_LOG", options.rank_log)
    continuing = resume is not None and same_file(resume, out / CHECKPOINT)
    held = [n for n in (FILE, CHECKPOINT) if (out / n).exists()]
    if held and not continuing and not options.overwrite:
        raise ResdiagError(f"--out {out} already holds a run ({', '.join(held)}): continue it with "
                           f"--resume {out / CHECKPOINT}, or pass --overwrite, or choose another folder")
    cifar = data.split(":", 1)[1] if data and data.startswith("cifar10:") else None
    inputs = [("--checkpoint", checkpoint), ("--data", cifar)]
    if not continuing:
        inputs.append(("--resume", resume))
    check_paths([], inputs, folders=[("--out", out, WRITTEN)])


def _train(target, config, options, dist: Dist, device, data, saved, ident, record_every,
           checkpoint_every, on_step) -> TrainResult:
    out = options.out
    model = target.model.to(device)
    model.train()
    net = wrap(model, dist, device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    if saved is not None:
        ckpt.restore_optimizer(optimizer, saved)
    mirror = None
    if options.rank_log is not None:
        options.rank_log.mkdir(parents=True, exist_ok=True)
        mirror = options.rank_log / f"rank{dist.rank}.jsonl"
    start = saved.step if saved else 0
    continuing = saved is not None and same_file(saved.path, out / CHECKPOINT)
    log = RunLog(out / FILE if dist.main else None, mirror)
    monitor = TrainMonitor(net, last=config.steps - 1, every=record_every, features=options.features,
                           blocks=options.blocks, objective=target.objective)
    job = Job(target, net, optimizer, data, config, dist, device, monitor, log, ident, start,
              saved.elapsed if saved else 0.0, out / CHECKPOINT if dist.main else None, checkpoint_every,
              start if continuing else None)
    log.open(start if continuing else None)
    try:
        log.write(start_line(job, saved.path if saved else None))
        last = run(job, on_step)
    finally:
        log.close()
        monitor.close()
    files = ()
    if dist.main:
        from resdiag.train.log import read

        plots = plot_run(read(out / FILE), out) if options.plots else []
        files = (out / FILE, *plots, out / CHECKPOINT)
    return TrainResult(config, out, dist.main, start, last, files, tuple(log.lines))

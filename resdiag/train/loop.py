"""The training loop: SGD steps with the recipe's schedule, a JSON line per step, the probes every
N steps (``resdiag.monitor.Monitor``), and atomic checkpoints.

Step s (0-based) draws its batch and its dropout masks from generators seeded by (seed, s), sets
the lr of the schedule, runs forward and backward (inside the Monitor on recorded steps) and the
optimizer step. Loss and training error are those of the global batch: summed over processes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import resdiag
from resdiag.monitor import Monitor
from resdiag.run.inputs import Batch
from resdiag.run.outputs import error_fraction
from resdiag.run.target import Target
from resdiag.train import checkpoint as ckpt
from resdiag.train.config import TrainConfig
from resdiag.train.data import TrainSet, mix
from resdiag.run.distributed import Dist, all_sum, barrier, from_main
from resdiag.train.log import SCHEMA, VERSION, RunLog
from resdiag.train.schedule import lr_at


@dataclass(frozen=True)
class StepStats:
    step: int  # 0-based index of the step just done
    steps: int  # the budget
    start: int  # the first step of this run (> 0 when resumed)
    lr: float
    loss: float  # E of the global batch (the target's loss), before this step's update
    error: float  # fraction of the global batch misclassified (of next tokens, for sequence logits)
    time: float  # seconds of training since step 0, over resumed segments (mean over processes)
    recorded: bool  # whether the probes recorded this step


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training; ``checkpoint_step`` is the step the intact checkpoint holds."""

    def __init__(self, step: int, checkpoint_step: int | None, path: Path | None):
        super().__init__(step)
        self.step, self.checkpoint_step, self.path = step, checkpoint_step, path


class TrainMonitor(Monitor):
    """The Monitor's schedule (steps 0, N, 2N, ...) plus the last step of the budget."""

    def __init__(self, model: nn.Module, *, last: int, **kwargs):
        super().__init__(model, **kwargs)
        self.last = last

    def due(self, step: int) -> bool:
        return super().due(step) or step == self.last


@dataclass
class Job:
    """Everything one process needs to train: built and validated by ``resdiag.train.run_training``."""

    target: Target  # the network (its state dict is what checkpoints hold), its inputs and loss
    net: nn.Module  # what runs forward: the model, or DistributedDataParallel around it
    optimizer: torch.optim.Optimizer
    data: TrainSet
    config: TrainConfig
    dist: Dist
    device: torch.device
    monitor: Monitor
    log: RunLog
    ident: dict
    start: int  # first step to run
    elapsed: float  # seconds of training before ``start``
    checkpoint: Path | None  # where rank 0 writes checkpoints (None: only rank 0 has one)
    checkpoint_every: int
    saved_at: int | None = None  # the step the checkpoint file already holds (a resumed run)

    @property
    def model(self) -> nn.Module:
        return self.target.model


def start_line(job: Job, resumed_from: Path | None) -> dict:
    return {"type": "start", "step": job.start, "schema": SCHEMA, "schema_version": VERSION,
            "config": job.config.to_dict(), "model": job.ident, "world_size": job.dist.world,
            "device": job.device.type, "resumed_from": str(resumed_from) if resumed_from else None,
            "torch_version": torch.__version__, "resdiag_version": resdiag.__version__}


def run(job: Job, on_step=None) -> StepStats | None:
    """Steps ``job.start`` .. ``steps - 1``; the stats of the last one (None when none was left)."""
    cfg, last, saved_at = job.config, None, job.saved_at
    t0 = time.perf_counter()
    step = job.start
    try:
        for step in range(job.start, cfg.steps):
            last = _step(job, step, lambda: time.perf_counter() - t0 + job.elapsed)
            if job.dist.main and on_step is not None:
                on_step(last)
            done = step + 1
            if done % job.checkpoint_every == 0 or done == cfg.steps:
                if job.checkpoint is not None:
                    _save(job, done, time.perf_counter() - t0 + job.elapsed)
                saved_at = done
        if saved_at != cfg.steps and job.checkpoint is not None:  # a finished run resumed elsewhere
            _save(job, cfg.steps, job.elapsed)
    except KeyboardInterrupt:
        raise Interrupted(step, saved_at, job.checkpoint) from None
    job.log.write({"type": "end", "step": cfg.steps, "loss": last.loss if last else None,
                   "error": last.error if last else None, "time": last.time if last else None})
    barrier(job.dist)
    return last


def _save(job: Job, step: int, elapsed: float) -> None:
    ckpt.save(job.checkpoint, model=job.model, optimizer=job.optimizer, step=step, config=job.config,
              ident=job.ident, elapsed=elapsed,
              every={"record": job.monitor.every, "checkpoint": job.checkpoint_every})


def _step(job: Job, step: int, clock) -> StepStats:
    cfg, dist = job.config, job.dist
    lr = lr_at(step, cfg)
    for group in job.optimizer.param_groups:
        group["lr"] = lr
    torch.manual_seed(mix(cfg.seed, 3, step, dist.rank))  # dropout shortcuts, users' random layers
    x, y = job.data.batch(step, cfg.batch_size, dist.rank, dist.world)
    batch = Batch(x, y, tokens=x if job.target.inputs.kind == "tokens" else None).to(job.device)
    job.optimizer.zero_grad(set_to_none=True)
    with job.monitor.record(step) as rec:
        out = job.target.forward(batch, job.net)
        loss = job.target.loss(out, batch)
        loss.backward()
    job.optimizer.step()
    wrong = error_fraction(out, batch) * len(y)
    local = torch.stack([loss.detach().double() * len(y), wrong.double()])
    extra = torch.tensor([len(y), clock()], dtype=torch.float64, device=local.device)
    loss_sum, wrong, n, seconds = all_sum(torch.cat([local, extra]), dist).tolist()
    stats = StepStats(step, cfg.steps, job.start, lr, loss_sum / n, wrong / n, seconds / dist.world,
                      rec is not None)
    job.log.write({"type": "step", "step": step, "lr": lr, "loss": stats.loss, "error": stats.error,
                   "time": stats.time})
    if rec is not None:
        recording = rec.recording
        if recording.rank is not None:
            # Feature ranks come from each process's own part of the batch; rank 0's stand for all.
            recording.rank = from_main(recording.rank, dist)
        job.monitor.history.clear()
        job.log.write({"type": "probe", **recording.to_dict()})
    return stats

"""The learning rate of each step: warm-up, then step decay at fractions of the budget."""

from __future__ import annotations

from resdiag.train.config import TrainConfig


def milestone_steps(cfg: TrainConfig) -> tuple[int, ...]:
    """The first step of each decayed phase: round(fraction * steps), e.g. 100 and 150 of 200."""
    return tuple(round(m * cfg.steps) for m in cfg.milestones)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """lr of step ``step`` (0-based): ``warmup_lr`` for the first ``warmup_steps`` steps, then
    ``lr * lr_decay**k`` where k is the number of milestones at or before ``step``.

    He et al. 2015, section 4.2: lr 0.1, divided by 10 at 32k and 48k of 64k iterations; for
    ResNet-110, 0.01 until the training error is below 80% (here: a fixed number of steps).
    """
    if step < cfg.warmup_steps:
        return cfg.warmup_lr
    passed = sum(step >= m for m in milestone_steps(cfg))
    return cfg.lr * cfg.lr_decay**passed

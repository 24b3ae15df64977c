"""The training recipe: He et al. 2015, section 4.2 (CIFAR-10), scaled to a budget of steps.

He et al. train for 64k iterations: SGD, mini-batch 128, momentum 0.9, weight decay 1e-4, lr 0.1
divided by 10 at 32k and 48k iterations (50% and 75% of the budget). For ResNet-110 they warm up
at lr 0.01 "until the training error is below 80% (about 400 iterations)"; resdiag warms up for a
fixed number of steps instead, so that a run is a pure function of its config (and a resumed run
the same run). Nothing here imports torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

from resdiag.errors import ResdiagError

DEEP = 100  # "very deep": He et al. warm up ResNet-110 and -1202, not ResNet-20 ... 56


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 200  # the budget; the schedule below scales with it (He et al.: 64k iterations)
    batch_size: int = 128  # global mini-batch, split over the processes (He et al.: 128 on 2 GPUs)
    lr: float = 0.1  # He et al. 2015, section 4.2
    momentum: float = 0.9  # ditto
    weight_decay: float = 1e-4  # ditto, on every parameter (as fb.resnet.torch does)
    milestones: tuple[float, ...] = (0.5, 0.75)  # lr /= 10 at 32k and 48k of 64k iterations
    lr_decay: float = 0.1  # the "divided by 10" at each milestone
    warmup_steps: int = 0  # steps at warmup_lr first; auto: ~1% of the budget for nets deeper than 100
    warmup_lr: float = 0.01  # He et al.'s warm-up lr for ResNet-110 and -1202
    seed: int = 0  # weights, the synthetic set, data order, augmentation and dropout all derive from it
    # "synthetic", "digits" or "cifar10:PATH" (resdiag.data.parse_data); digits when scikit-learn imports
    data: str = field(default_factory=lambda: _default_data())
    synthetic_size: int = 2048  # a fixed set, revisited every epoch, so the loss can fall
    augment: bool = True  # CIFAR-10 only: 4-pixel zero pad, random 32x32 crop, random flip (section 4.2)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ResdiagError(f"unknown training config fields {sorted(unknown)}")
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()}
        return cls(**kw)


def _default_data() -> str:
    from resdiag.data import default_data  # numpy only, no torch

    return default_data()


def auto_warmup(steps: int, depth: int | None) -> int:
    """Warm-up steps when none are given: ceil(1% of the budget) for nets deeper than 100 layers
    (He et al.: ~400 of 64k iterations for ResNet-110), none otherwise or for unknown depth."""
    return math.ceil(steps / 100) if depth is not None and depth > DEEP else 0


def make_config(depth: int | None = None, **given) -> TrainConfig:
    """The recipe with the options the user gave (None: the recipe's value); validated."""
    given = {k: v for k, v in given.items() if v is not None}
    cfg = replace(TrainConfig(), **given)
    if "warmup_steps" not in given:
        cfg = replace(cfg, warmup_steps=auto_warmup(cfg.steps, depth))
    return validate(cfg)


def validate(cfg: TrainConfig) -> TrainConfig:
    if cfg.steps < 1:
        raise ResdiagError(f"--steps must be >= 1, got {cfg.steps}")
    if cfg.batch_size < 1:
        raise ResdiagError(f"--batch-size must be >= 1, got {cfg.batch_size}")
    for name in ("lr", "momentum", "weight_decay", "warmup_lr"):
        value = getattr(cfg, name)
        if not (math.isfinite(value) and value >= 0):
            raise ResdiagError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value}")
    if cfg.lr == 0:
        raise ResdiagError("--lr must be > 0")
    if cfg.warmup_steps < 0 or cfg.warmup_steps >= cfg.steps:
        raise ResdiagError(f"--warmup-steps must be in [0, --steps), got {cfg.warmup_steps} "
                           f"of {cfg.steps} steps")
    if any(not 0 < m < 1 for m in cfg.milestones) or list(cfg.milestones) != sorted(cfg.milestones):
        raise ResdiagError(f"milestones must be increasing fractions in (0, 1), got {cfg.milestones}")
    if cfg.synthetic_size < cfg.batch_size and cfg.data == "synthetic":
        raise ResdiagError(f"the synthetic set ({cfg.synthetic_size}) is smaller than --batch-size "
                           f"{cfg.batch_size}")
    return cfg


def merge_resumed(saved: TrainConfig, given: dict) -> TrainConfig:
    """The config of a resumed run: the checkpoint's, with every option the user gave checked
    against it. A recipe change would make the resumed run a different run, so it is refused."""
    clash = [f"--{k.replace('_', '-')} {v} (checkpoint: {getattr(saved, k)})"
             for k, v in given.items() if v is not None and _differs(getattr(saved, k), v)]
    if clash:
        raise ResdiagError(f"--resume continues the checkpoint's run; it cannot change {', '.join(clash)}")
    return saved


def _differs(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return not math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    return a != b

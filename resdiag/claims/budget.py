"""How much each claim measures: the quick, default and full budgets, as plain data.

Every training claim runs each variant with every seed of ``seeds`` (three or more: a verdict needs
a seed spread, resdiag.claims.stats). The wall times in the comments were measured on a 2-core CPU
shared with other jobs (docs/claims.md gives the measured run).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    name: str
    seeds: tuple[int, ...]  # every claim, gradient and training alike
    # C1: gradient ratio against depth, plain vs residual, with and without BN, at initialisation
    c1_depths: tuple[int, ...]
    grad_batches: int
    grad_batch_size: int
    grad_image: int  # C1/C2 nets see 3 x grad_image x grad_image synthetic inputs (a gradient at
    # initialisation does not need real images; the per-block factors do not depend on the size)
    # C2: slope of ln||dE/dx_l|| against λ, residual MLPs and CIFAR ResNets
    c2_mlp_depth: int
    c2_resnet_depth: int
    # C3-C8: short trainings (digits by default) scored on the held-out split
    train_depth: int  # C3, C4: the ResNet whose shortcut and placement vary
    c5_depths: tuple[int, int]  # C5: shallow and deep, plain and residual (C6-C8 use the deep pair)
    width: float  # multiplier on the 16/32/64 filters of the trained nets
    channels: int  # the trained nets take channels x image x image inputs (digits: grey, 8x8)
    image: int
    steps: int
    batch_size: int
    lr: float
    rank_batch_size: int
    synthetic_size: int = 512  # only for --data synthetic
    device: str = "cpu"
    threads: int = 1  # torch intra-op threads on the CPU: these nets are too small to gain from more,
    # and on a shared 2-core machine two threads ran a plain-20 training 12x slower than one

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image, self.image)


QUICK = Budget(
    "quick",
    seeds=(0, 1, 2),
    c1_depths=(20, 56),
    grad_batches=1,
    grad_batch_size=16,
    grad_image=16,
    c2_mlp_depth=64,
    c2_resnet_depth=20,
    train_depth=8,
    c5_depths=(8, 32),
    width=0.25,
    channels=1,
    image=8,
    steps=80,
    batch_size=32,
    lr=0.05,
    rank_batch_size=128,
)
DEFAULT = Budget(
    "default",
    seeds=(0, 1, 2),
    c1_depths=(20, 56, 110),
    grad_batches=2,
    grad_batch_size=32,
    grad_image=16,
    c2_mlp_depth=128,
    c2_resnet_depth=56,
    train_depth=14,
    c5_depths=(20, 56),
    width=0.25,
    channels=1,
    image=8,
    steps=200,
    batch_size=32,
    lr=0.05,
    rank_batch_size=256,
)
# For a GPU: the depths of the papers and the paper's recipe on CIFAR-10 (pass --data cifar10:PATH).
FULL = Budget(
    "full",
    seeds=(0, 1, 2),
    c1_depths=(20, 56, 110, 1202),
    grad_batches=4,
    grad_batch_size=128,
    grad_image=32,
    c2_mlp_depth=256,
    c2_resnet_depth=110,
    train_depth=110,
    c5_depths=(20, 56),
    width=1.0,
    channels=3,
    image=32,
    steps=64000,
    batch_size=128,
    lr=0.1,
    rank_batch_size=256,
    synthetic_size=50000,
    device="auto",
    threads=0,  # 0: leave torch's default
)
BUDGETS = {b.name: b for b in (QUICK, DEFAULT, FULL)}

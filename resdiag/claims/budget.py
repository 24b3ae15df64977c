"""How much each claim measures: the quick, default and full budgets, as plain data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    name: str
    # C1: gradient ratio against depth, plain vs residual, with and without BN
    c1_depths: tuple[int, ...]
    seeds: tuple[int, ...]
    grad_batches: int
    grad_batch_size: int
    rank_batch_size: int
    # C2: slope of ln||dE/dx_l|| against log(lambda), residual MLPs and CIFAR ResNets
    c2_mlp_depth: int
    c2_resnet_depth: int
    # C3-C8: short trainings on a fixed synthetic set (or CIFAR-10 with --data)
    train_depth: int  # C3, C4: the ResNet whose shortcut and placement vary
    c5_depths: tuple[int, int]  # C5: shallow and deep, plain and residual
    width: float  # multiplier on the 16/32/64 filters of the trained nets
    image: int  # trained nets see image x image inputs
    steps: int
    batch_size: int
    synthetic_size: int
    lr: float
    device: str = "cpu"


QUICK = Budget(
    "quick",
    c1_depths=(20, 56),
    seeds=(0,),
    grad_batches=2,
    grad_batch_size=16,
    rank_batch_size=128,
    c2_mlp_depth=64,
    c2_resnet_depth=20,
    train_depth=14,
    c5_depths=(20, 56),
    width=0.25,
    image=16,
    steps=30,
    batch_size=32,
    synthetic_size=256,
    lr=0.05,
)
DEFAULT = Budget(
    "default",
    c1_depths=(20, 56, 110),
    seeds=(0, 1),
    grad_batches=4,
    grad_batch_size=32,
    rank_batch_size=256,
    c2_mlp_depth=128,
    c2_resnet_depth=56,
    train_depth=20,
    c5_depths=(20, 56),
    width=0.5,
    image=16,
    steps=120,
    batch_size=64,
    synthetic_size=512,
    lr=0.05,
)
# For a GPU: the depths of the papers and the paper's recipe on CIFAR-10 (pass --data cifar10:PATH).
FULL = Budget(
    "full",
    c1_depths=(20, 56, 110, 1202),
    seeds=(0, 1, 2),
    grad_batches=4,
    grad_batch_size=128,
    rank_batch_size=256,
    c2_mlp_depth=256,
    c2_resnet_depth=110,
    train_depth=110,
    c5_depths=(20, 56),
    width=1.0,
    image=32,
    steps=64000,
    batch_size=128,
    synthetic_size=50000,
    lr=0.1,
    device="auto",
)
BUDGETS = {b.name: b for b in (QUICK, DEFAULT, FULL)}

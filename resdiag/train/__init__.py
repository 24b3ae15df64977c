"""``resdiag train``: short training runs with He et al.'s CIFAR recipe and periodic probes.

    from pathlib import Path

    from resdiag.run.target import TargetSpec
    from resdiag.train import RunOptions, run_training
    from resdiag.zoo import resolve

    result = run_training(TargetSpec(arch=resolve("resnet20")), {"steps": 50}, RunOptions(Path("runs/r20")))

Layers: ``config`` (the recipe, pure data) -> ``schedule`` (lr per step) -> ``data`` (the training
set, sharded by process) -> ``loop`` (steps, Monitor recordings, checkpoints) -> ``plots`` ->
``run_training`` (checks every input, then runs). ``distributed`` joins a torchrun job. docs/train.md.
"""

from resdiag.train.run_training import RunOptions, TrainResult, run_training
from resdiag.train.config import TrainConfig
from resdiag.train.loop import Interrupted, StepStats

__all__ = ["Interrupted", "RunOptions", "StepStats", "TrainConfig", "TrainResult", "run_training"]

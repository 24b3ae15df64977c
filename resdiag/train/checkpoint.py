"""Training checkpoints: written atomically, read with ``weights_only=True``, checked against the model.

A checkpoint holds the model's state dict (under ``model``, so ``grad-flow --checkpoint`` and
``rank --checkpoint`` read it too), the optimizer's state (momentum buffers), the number of
completed steps, the training config, the model's identity, the elapsed time and the recording
and checkpoint schedules. It holds no random-number state because the run needs none: every
random draw of step s (data order, augmentation, dropout) comes from a generator seeded by
(seed, s), so resuming at step s on the CPU repeats the uninterrupted run bit for bit.

The file is written to a temporary file beside it and moved over the old one with
``os.replace`` (``resdiag.results.atomic_write``): a run killed at any moment leaves either the
previous checkpoint or the new one, never a part of one.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import torch

from resdiag.errors import ResdiagError
from resdiag.results import atomic_write
from resdiag.run.checkpoint import missing, torch_load
from resdiag.train.config import TrainConfig
from resdiag.zoo import MLPConfig, ModelConfig, ResNetConfig, Shortcut

SCHEMA = "resdiag.train-checkpoint"
VERSION = 1


@dataclass(frozen=True)
class Saved:
    path: Path
    step: int  # completed steps: the resumed run starts at this step
    config: TrainConfig
    identity: dict  # name, family, parameters, config, input_shape, num_classes
    model: dict
    optimizer: dict
    elapsed: float  # seconds of training before the checkpoint, over every earlier segment
    every: dict  # {"record": N, "checkpoint": M}: the run's schedules, kept unless given again


def identity(info, input_shape: tuple[int, ...], num_classes: int) -> dict:
    """What a checkpoint was written for: the ModelInfo's fields and the model's input and output."""
    return {"name": info.name, "family": info.family, "parameters": info.parameters,
            "config": info.config, "input_shape": list(input_shape), "num_classes": num_classes}


def save(path: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int,
         config: TrainConfig, ident: dict, elapsed: float, every: dict) -> None:
    buf = io.BytesIO()
    torch.save({"schema": SCHEMA, "schema_version": VERSION, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "step": step, "config": config.to_dict(),
                "identity": ident, "elapsed": elapsed, "every": every}, buf)
    atomic_write(path, buf.getvalue())


def load(path: Path) -> Saved:
    """The checkpoint in ``path``; a ResdiagError for anything that is not a resdiag training one."""
    path = Path(path)
    if path.is_dir():
        raise missing(path, "--resume")
    if not path.is_file():
        raise ResdiagError(f"--resume {path}: no such file")
    obj = torch_load(path, f"--resume {path}")
    if not isinstance(obj, dict) or obj.get("schema") != SCHEMA:
        raise ResdiagError(f"--resume {path} is not a checkpoint written by 'resdiag train' "
                           "(use --checkpoint to start from a state_dict)")
    if obj.get("schema_version") != VERSION:
        raise ResdiagError(f"--resume {path}: checkpoint version {obj.get('schema_version')}, "
                           f"this resdiag reads version {VERSION}")
    return Saved(path, int(obj["step"]), TrainConfig.from_dict(obj["config"]), obj["identity"],
                 obj["model"], obj["optimizer"], float(obj["elapsed"]), dict(obj.get("every") or {}))


def check_identity(saved: Saved, ident: dict) -> None:
    """Refuse to resume a checkpoint written for another model."""
    was, now = saved.identity, ident
    for key in ("name", "family", "config", "input_shape", "num_classes"):
        if was.get(key) != now.get(key):
            raise ResdiagError(f"--resume {saved.path} was written for {_describe(was)}, not for "
                               f"{_describe(now)} ({key} differs)")


def _describe(ident: dict) -> str:
    shape = ",".join(map(str, ident.get("input_shape", [])))
    return f"{ident.get('name')} (input {shape}, {ident.get('num_classes')} classes)"


def zoo_config(ident: dict) -> ModelConfig | None:
    """The zoo config a checkpoint was written for; None for a user's model."""
    from resdiag.zoo.config import validate

    family, d = ident.get("family"), dict(ident.get("config") or {})
    if family not in ("resnet", "mlp"):
        return None
    try:
        d["shortcut"] = Shortcut(**d["shortcut"])
        d["input_shape"] = tuple(d["input_shape"])
        return validate((ResNetConfig if family == "resnet" else MLPConfig)(**d))
    except (KeyError, TypeError):
        raise ResdiagError(f"the checkpoint's model config does not describe a {family}: {d}") from None


def restore_optimizer(optimizer: torch.optim.Optimizer, saved: Saved) -> None:
    try:
        optimizer.load_state_dict(saved.optimizer)
    except (ValueError, KeyError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise ResdiagError(f"--resume {saved.path}: its optimizer state does not fit ({first})") from None

"""What every run shares: picking the device, seeding, and leaving the model as it was found."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict
from typing import Literal

import torch
from torch import nn

from resdiag.errors import ResdiagError
from resdiag.results import ModelInfo
from resdiag.zoo import ModelConfig


SEED_RANGE = (-2**63, 2**63)  # torch.manual_seed and torch.Generator take a 64-bit integer


def check_seed(seed: int, source: str = "--seed") -> int:
    """The seed, or a ResdiagError naming where it came from when it does not fit 64 bits."""
    if not SEED_RANGE[0] <= seed < SEED_RANGE[1]:
        raise ResdiagError(f"{source} {seed} does not fit a 64-bit seed: use an integer in "
                           "[-2**63, 2**63)")
    return seed


Mode = Literal["train", "eval"]  # train: BatchNorm uses batch statistics; eval: running ones


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    name = name.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ResdiagError(f"--device {name}: CUDA is not available here; use --device cpu or auto")
        try:
            device = torch.device(name)
        except RuntimeError:
            raise ResdiagError(f"malformed device {name!r}: use cuda or cuda:N") from None
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ResdiagError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
        return device
    raise ResdiagError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N")


@contextlib.contextmanager
def preserved(model: nn.Module) -> Iterator[None]:
    """Restore the model's train/eval mode of every submodule and its parameters' ``.grad`` on exit.

    BatchNorm running statistics are buffers that a training-mode forward updates; they are saved
    and restored too, so a probe leaves the model bit for bit as it found it.
    """
    modes = {m: m.training for m in model.modules()}
    grads = {p: p.grad for p in model.parameters()}
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    try:
        yield
    finally:
        for m, mode in modes.items():
            m.training = mode
        for p, g in grads.items():
            p.grad = g
        with torch.no_grad():
            for name, b in model.named_buffers():
                if name in buffers:
                    b.copy_(buffers[name])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_info(model: nn.Module, cfg: ModelConfig | None = None, name: str | None = None) -> ModelInfo:
    params = sum(p.numel() for p in model.parameters())
    if cfg is None:
        return ModelInfo(name or type(model).__name__, "custom", params, {})
    return ModelInfo(cfg.name, cfg.family, params, zoo_config_dict(cfg))


def zoo_config_dict(cfg: ModelConfig) -> dict:
    """A zoo config as JSON-ready data (what results and checkpoints record)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}


def check_batch(model: nn.Module, batch_size: int, mode: str) -> None:
    """Refuse up front what BatchNorm would refuse mid-run: one sample per batch in train mode."""
    bn = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
    if mode == "train" and batch_size < 2 and any(isinstance(m, bn) for m in model.modules()):
        raise ResdiagError("BatchNorm in train mode needs --batch-size >= 2 (or use --mode eval)")

"""What to diagnose, and the one place that turns it into a ready target (docs/design.md).

``TargetSpec`` names the network (a zoo config, a ``module:callable`` factory, or a live module
from the Python API), what it is fed, its checkpoint, its blocks, the seed and the loss.
``build_target`` builds it: seed, build or call, load and check the checkpoint, resolve the inputs
(vocabulary, shape), run one check forward and refuse what cannot carry a gradient signal.
Every command, the Monitor's callers, check, sweep and train go through it; nothing else
dispatches on zoo-vs-user.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resdiag.data import DataSpec
from resdiag.errors import ResdiagError
from resdiag.results import ModelInfo
from resdiag.run.inputs import Batch, InputSpec, make_batches, probe_batch, vocab_of
from resdiag.run.common import check_seed
from resdiag.run.outputs import LOSSES, LossName, check_output, loss_of, objective
from resdiag.zoo import ModelConfig


@dataclass(frozen=True, kw_only=True)
class TargetSpec:
    """What to diagnose. Exactly one of ``arch``, ``factory``, ``module``."""

    arch: ModelConfig | None = None  # a zoo config (resdiag.zoo.resolve)
    factory: str | None = None  # "package.module:callable" returning an nn.Module
    module: nn.Module | None = field(default=None, compare=False, repr=False)  # the Python API
    inputs: InputSpec = InputSpec()
    num_classes: int | None = None  # factory/module: checked against the output (None: taken from it)
    checkpoint: Path | None = None  # a state dict, or a `resdiag train` checkpoint
    blocks: str | None = None  # regular expression over module names picking the blocks
    seed: int = 0  # the random seed of the weights (zoo, factory) and of the data
    loss: LossName = "cross_entropy"

    def __post_init__(self):
        given = [k for k in ("arch", "factory", "module") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ResdiagError(f"a target needs exactly one of arch, factory, module; got {given or 'none'}")
        if self.loss not in LOSSES:
            raise ResdiagError(f"unknown loss {self.loss!r}: use {', '.join(LOSSES)}")
        check_seed(self.seed, "seed")
        if self.arch is not None and self.inputs.kind == "image" and self.inputs.shape is not None:
            raise ResdiagError("a zoo model's input shape is part of its config (--input-shape)")


@dataclass(frozen=True, kw_only=True)
class Target:
    """A ready target: the model, what feeds it, and how its output becomes the loss E."""

    spec: TargetSpec
    model: nn.Module = field(repr=False)
    info: ModelInfo
    inputs: InputSpec  # resolved: an image shape, or a vocabulary
    num_classes: int  # classes of (batch, classes) logits; the vocabulary of (batch, T, V) logits
    depth: int | None  # the zoo depth (train's automatic warm-up); None otherwise
    sequence: bool = False  # whether the logits are (batch, T, V): next-token cross-entropy

    @property
    def objective(self) -> str:
        return objective(self.spec.loss, self.sequence)

    @property
    def blocks(self) -> str | None:
        return self.spec.blocks

    @property
    def loss_name(self) -> str:
        return self.spec.loss

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one sample's input (images: C,H,W; tokens: (T,))."""
        if self.inputs.kind == "tokens":
            return (self.inputs.seq_len,)
        return tuple(self.inputs.shape or ())

    def batches(self, data: DataSpec, batch_size: int, count: int, seed: int) -> Iterator[Batch]:
        return make_batches(self.inputs, data, self.num_classes, batch_size, count, seed)

    def forward(self, batch: Batch, model: nn.Module | None = None) -> Any:
        """``model`` (default: the target's; e.g. its DistributedDataParallel wrapper) on ``batch``.
        With ``loss = "model"`` token ids are also passed as ``labels`` (HuggingFace's convention)."""
        model = model if model is not None else self.model
        x = batch.inputs
        if self.inputs.kind == "image" and isinstance(x, torch.Tensor) and x.is_floating_point():
            dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), x.dtype)
            if dtype != x.dtype:  # a bfloat16/float16 model gets its synthetic images in its dtype
                batch = Batch(x.to(dtype), batch.labels, batch.tokens)
        if self.spec.loss == "model" and batch.tokens is not None and not isinstance(batch.inputs, dict):
            return batch.forward(model, labels=batch.tokens)
        return batch.forward(model)

    def loss(self, out: Any, batch: Batch) -> torch.Tensor:
        return loss_of(out, batch, self.spec.loss)


def build_target(spec: TargetSpec, *, device: str = "auto", batch_size: int | None = None,
                 backward: bool = True) -> Target:
    """Build ``spec``: refuse up front a zoo run that would not fit in memory (for ``batch_size``
    and a ``backward`` pass or not), seed with ``spec.seed``, build the model, load the checkpoint,
    resolve the inputs and check one forward pass."""
    from resdiag.run.usermodel import load_user_model
    from resdiag.zoo import build

    if batch_size is not None:
        check_memory(spec, batch_size=batch_size, device=device, backward=backward)
    torch.manual_seed(spec.seed)  # weights: the zoo's init and a factory's both draw from it
    if spec.arch is not None:
        model = build(spec.arch)
    elif spec.factory is not None:
        model = load_user_model(spec.factory)
    else:
        model = spec.module
    weights = _load(model, spec)
    inputs = _inputs(spec, model)
    classes, sequence = (spec.arch.num_classes, False) if spec.arch is not None and inputs.kind == "image" \
        else _check_forward(model, spec, inputs)
    info = _info(model, spec, inputs, classes, weights)
    return Target(spec=spec, model=model, info=info, inputs=inputs, num_classes=classes,
                  depth=spec.arch.depth if spec.arch is not None else None, sequence=sequence)


def build_for(spec: TargetSpec, options: dict, *, batch_size: int, backward: bool) -> Target:
    """``build_target`` for a probe run with ``options`` (its ``device``; its ``batch_size``, else
    the probe's default ``batch_size``)."""
    return build_target(spec, device=options.get("device", "auto"),
                        batch_size=options.get("batch_size", batch_size), backward=backward)


def check_memory(spec: TargetSpec, *, batch_size: int, device: str, backward: bool) -> None:
    """Refuse a zoo target that would not fit in memory at ``batch_size`` (``resdiag.run.memory``);
    nothing is built. Users' models are not estimated."""
    from resdiag.run.common import resolve_device
    from resdiag.run.memory import check_fits
    from resdiag.zoo import MLPConfig, ResNetConfig

    if isinstance(spec.arch, (MLPConfig, ResNetConfig)):  # the families the estimate knows
        check_fits(spec.arch, batch_size, resolve_device(device), backward=backward)


def identity_of(spec: TargetSpec) -> dict:
    """What a checkpoint written for this target records (``name``, ``family``, ``config``)."""
    from resdiag.run.common import zoo_config_dict

    if spec.arch is not None:
        return {"name": spec.arch.name, "family": spec.arch.family, "config": zoo_config_dict(spec.arch)}
    return {"name": spec.factory or "custom", "family": "custom"}


def _load(model: nn.Module, spec: TargetSpec) -> dict | None:
    from resdiag.run.checkpoint import load_checkpoint

    if spec.checkpoint is None:
        return None
    ident = identity_of(spec)
    if spec.arch is None:
        ident = None  # a user's model: names, shapes and counts are what can be compared
    return load_checkpoint(model, spec.checkpoint, ident)


def _inputs(spec: TargetSpec, model: nn.Module) -> InputSpec:
    given = spec.inputs
    if given.kind == "tokens":
        return dataclasses.replace(given, vocab=vocab_of(model, given.vocab))
    if given.kind == "image":
        shape = tuple(spec.arch.input_shape) if spec.arch is not None else given.shape or (3, 32, 32)
        return dataclasses.replace(given, shape=shape)
    return given


def _check_forward(model: nn.Module, spec: TargetSpec, inputs: InputSpec) -> tuple[int, bool]:
    """One forward pass of two samples in eval mode, with autograd on (so an output that cannot
    carry a gradient shows); returns the width of the logits and whether they are (batch, T, V).
    The model is left as it was."""
    from resdiag.run.common import preserved

    batch = probe_batch(inputs)
    p = next(model.parameters(), None)
    if p is not None:
        batch = batch.to(p.device)
    probe = Target(spec=spec, model=model, info=ModelInfo("", "", 0, {}), inputs=inputs, num_classes=0,
                   depth=None)
    with preserved(model):
        model.eval()
        try:
            with torch.enable_grad():
                out = probe.forward(batch)
        except ResdiagError:
            raise
        except Exception as exc:
            raise ResdiagError(f"the model's forward fails on {_describe(inputs)} "
                               f"({type(exc).__name__}: {_first_line(exc)})") from None
        return check_output(out, spec.loss, batch, spec.num_classes)


def _describe(inputs: InputSpec) -> str:
    if inputs.kind == "tokens":
        return f"token ids of length {inputs.seq_len} (vocabulary {inputs.vocab})"
    if inputs.kind == "image":
        return f"input shape {','.join(map(str, inputs.shape))}"
    return "the given batch"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:160] if text else "no message"


def _info(model: nn.Module, spec: TargetSpec, inputs: InputSpec, classes: int, weights) -> ModelInfo:
    from resdiag.run.common import model_info

    if spec.arch is not None:
        info = model_info(model, spec.arch)
    else:
        name = spec.factory or type(model).__name__
        params = sum(p.numel() for p in model.parameters())
        info = ModelInfo(name, "custom", params, {"model": name, "inputs": inputs.describe(),
                                                   "num_classes": classes, "loss": spec.loss})
    return dataclasses.replace(info, weights=weights)

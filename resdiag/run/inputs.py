"""What a target is fed: float images of a shape, int64 token ids, or the user's own batch.

A ``Batch`` is what one forward pass takes: ``inputs`` (a tensor, or a dict of keyword arguments
for models such as HuggingFace's) and ``labels`` (class labels for (batch, classes) logits; None
when the loss is next-token cross-entropy over token inputs, or the model's own loss).
docs/architectures.md ("Inputs and outputs") states the rules.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from resdiag.data import DataSpec, batches
from resdiag.errors import ResdiagError

InputKind = Literal["image", "tokens", "batch"]
DEFAULT_SHAPE = (3, 32, 32)


@dataclass(frozen=True, kw_only=True)
class InputSpec:
    """``image``: float N(0,1) inputs of ``shape``; ``tokens``: int64 ids of length ``seq_len`` drawn
    uniformly from ``vocab`` (None: the model's input embedding); ``batch``: the user's ``batch``."""

    kind: InputKind = "image"
    shape: tuple[int, ...] | None = None  # image: C,H,W (None: the zoo config's, else 3,32,32)
    seq_len: int | None = None  # tokens
    vocab: int | None = None  # tokens: ids in [0, vocab)
    batch: Any = None  # batch: a tensor, a (inputs, labels) pair, or a dict of keyword arguments

    def __post_init__(self):
        if self.kind == "tokens" and (self.seq_len is None or self.seq_len < 2):
            raise ResdiagError(f"--tokens needs a sequence length >= 2, got {self.seq_len}")
        if self.vocab is not None and self.vocab < 2:
            raise ResdiagError(f"--vocab must be >= 2, got {self.vocab}")
        if self.vocab is not None and self.kind != "tokens":
            raise ResdiagError("--vocab applies to token inputs (--tokens SEQ_LEN)")
        if self.kind == "batch" and self.batch is None:
            raise ResdiagError("input kind 'batch' needs the batch itself")

    def describe(self) -> dict:
        if self.kind == "tokens":
            return {"kind": "tokens", "seq_len": self.seq_len, "vocab": self.vocab}
        if self.kind == "image":
            return {"kind": "image", "shape": list(self.shape or DEFAULT_SHAPE)}
        return {"kind": "batch"}


@dataclass(frozen=True)
class Batch:
    inputs: torch.Tensor | dict[str, torch.Tensor]
    labels: torch.Tensor | None
    tokens: torch.Tensor | None = None  # the token ids, when the inputs are tokens

    def to(self, device) -> Batch:
        move = _mover(device)
        inputs = {k: move(v) for k, v in self.inputs.items()} if isinstance(self.inputs, dict) \
            else move(self.inputs)
        return Batch(inputs, move(self.labels), move(self.tokens))

    def size(self) -> int:
        first = next(iter(self.inputs.values())) if isinstance(self.inputs, dict) else self.inputs
        return int(first.shape[0])

    def forward(self, model: nn.Module, **extra) -> Any:
        if isinstance(self.inputs, dict):
            return model(**self.inputs, **extra)
        return model(self.inputs, **extra)


def _mover(device):
    def move(t):
        return t.to(device, non_blocking=True) if isinstance(t, torch.Tensor) else t
    return move


def vocab_of(model: nn.Module, given: int | None) -> int:
    """``given``, else the size of the model's input embedding (``get_input_embeddings()``, as
    HuggingFace models have, else the first ``nn.Embedding``); refuses ids the embedding lacks."""
    emb = None
    getter = getattr(model, "get_input_embeddings", None)
    if callable(getter):
        try:
            emb = getter()
        except Exception:  # some models raise NotImplementedError here
            emb = None
    if not isinstance(emb, nn.Embedding):
        emb = next((m for m in model.modules() if isinstance(m, nn.Embedding)), None)
    size = emb.num_embeddings if isinstance(emb, nn.Embedding) else None
    if given is None:
        if size is None:
            raise ResdiagError("--tokens: the model has no nn.Embedding to take the vocabulary from; "
                               "give --vocab N")
        return size
    if size is not None and given > size:
        raise ResdiagError(f"--vocab {given} exceeds the model's input embedding ({size} ids)")
    return given


def check_pair(inputs: InputSpec, data: DataSpec) -> None:
    if data.kind == "cifar10" and inputs.kind != "image":
        raise ResdiagError(f"--data cifar10 holds images; it cannot feed {inputs.kind} inputs")


def make_batches(inputs: InputSpec, data: DataSpec, num_classes: int, batch_size: int, count: int,
                 seed: int) -> Iterator[Batch]:
    """``count`` CPU batches drawn from a generator seeded by ``seed`` (the user's batch: as given)."""
    check_pair(inputs, data)
    if inputs.kind == "batch":
        for _ in range(count):
            yield user_batch(inputs.batch)
        return
    if inputs.kind == "image":
        shape = inputs.shape or DEFAULT_SHAPE
        for x, y in batches(data, shape, num_classes, batch_size, count, seed):
            yield Batch(x, y)
        return
    gen = torch.Generator().manual_seed(seed)
    for _ in range(count):
        ids = torch.randint(0, inputs.vocab, (batch_size, inputs.seq_len), generator=gen)
        y = torch.randint(0, num_classes, (batch_size,), generator=gen)
        yield Batch(ids, y, tokens=ids)


def probe_batch(inputs: InputSpec) -> Batch:
    """Two samples for the check forward: zeros (valid images, token ids and labels for any number
    of classes)."""
    if inputs.kind == "batch":
        return user_batch(inputs.batch)
    labels = torch.zeros(2, dtype=torch.int64)
    if inputs.kind == "tokens":
        ids = torch.zeros(2, inputs.seq_len, dtype=torch.int64)
        return Batch(ids, labels, tokens=ids)
    return Batch(torch.zeros(2, *(inputs.shape or DEFAULT_SHAPE)), labels)


def user_batch(batch: Any) -> Batch:
    """The user's batch: a tensor (int64: token ids), an ``(inputs, labels)`` pair, or a dict of
    keyword arguments (``input_ids`` are the token ids; a ``labels`` entry is passed along)."""
    if isinstance(batch, torch.Tensor):
        return Batch(batch, None, tokens=batch if not batch.is_floating_point() else None)
    if isinstance(batch, (tuple, list)) and len(batch) == 2 and isinstance(batch[0], torch.Tensor):
        x, y = batch
        return Batch(x, y, tokens=x if not x.is_floating_point() else None)
    if isinstance(batch, Mapping) and batch:
        inputs = dict(batch)
        return Batch(inputs, None, tokens=inputs.get("input_ids"))
    raise ResdiagError(f"a batch is a tensor, an (inputs, labels) pair or a dict of tensors, "
                       f"not a {type(batch).__name__}")

"""From what a model returns to the loss E whose gradient resdiag measures.

The rule (docs/architectures.md, "Inputs and outputs"):

- logits are the output itself (a tensor), its first element (a tuple or list), or its ``logits``
  entry (a dict or a HuggingFace ``ModelOutput``);
- (batch, classes) logits: mean cross-entropy against the batch's labels, or mean squared error
  against one-hot labels (``mse``);
- (batch, T, V) logits of token inputs: next-token cross-entropy, the mean over positions
  t < T-1 of -log softmax(logits[:, t])[ids[:, t+1]] (the causal language-model objective);
- ``model``: the output's own ``loss`` entry (a HuggingFace model given ``labels``), used as is.

Outputs that cannot carry a gradient signal are refused (``check_output``): integer logits, an
output that does not require grad (a forward under ``torch.no_grad``, a detach), and one logit
per sample under cross-entropy (softmax over one class is constant: every gradient is 0).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from resdiag.errors import ResdiagError
from resdiag.model_output import split_output
from resdiag.run.inputs import Batch

LossName = Literal["cross_entropy", "mse", "model"]
LOSSES: tuple[str, ...] = ("cross_entropy", "mse", "model")


def check_output(out: Any, loss: str, batch: Batch, num_classes: int | None) -> tuple[int, bool]:
    """Refuse an output resdiag cannot turn into a loss with a gradient; return the width of its
    logits (classes, or the vocabulary) and whether they are sequence logits (batch, T, V)."""
    logits, own = split_output(out)
    if loss == "model":
        if not isinstance(own, torch.Tensor):
            raise ResdiagError("--loss model: the model's output has no 'loss' entry (HuggingFace models "
                               "return one when given labels)")
        _check_grad(own, "loss")
    if logits is None:
        if loss == "model":
            return 0, False
        raise ResdiagError(f"the model's forward returned a {type(out).__name__}; resdiag needs a tensor "
                           "of logits, a tuple/list whose first element is one, or a dict/ModelOutput "
                           "with 'logits'")
    if not logits.is_floating_point():
        raise ResdiagError(f"the model returns integer logits ({logits.dtype}): no gradient flows "
                           "through them; return the float scores before any argmax or rounding")
    if logits.ndim == 3 and batch.tokens is None and loss != "model":
        raise ResdiagError(f"the model returns logits of shape {tuple(logits.shape)} (batch, T, V): "
                           "next-token cross-entropy needs token inputs (--tokens SEQ_LEN)")
    if logits.ndim not in (2, 3) or logits.shape[0] != batch.size():
        raise ResdiagError(f"the model's forward returned logits of shape {tuple(logits.shape)}; "
                           "resdiag needs (batch, classes) or (batch, T, vocabulary)")
    if logits.ndim == 3 and loss == "mse":
        raise ResdiagError("--loss mse needs (batch, classes) logits; sequence logits take cross_entropy")
    width = int(logits.shape[-1])
    if loss == "cross_entropy" and width < 2:
        raise ResdiagError("the model outputs one logit per sample: cross-entropy over one class is "
                           "constant, so every gradient is exactly 0; use --loss mse or >= 2 outputs")
    if loss != "model":
        _check_grad(logits, "output")
    if num_classes is not None and logits.ndim == 2 and width != num_classes:
        raise ResdiagError(f"the model outputs {width} classes, not --num-classes {num_classes}")
    if logits.ndim == 2 and batch.labels is None and loss != "model":
        raise ResdiagError("(batch, classes) logits need labels: pass the batch as (inputs, labels)")
    return width, logits.ndim == 3


def objective(loss: str, sequence: bool) -> str:
    """The name results record for E (RunInfo.objective)."""
    return "next_token_cross_entropy" if sequence and loss == "cross_entropy" else loss


def _check_grad(t: torch.Tensor, what: str) -> None:
    if not t.requires_grad:
        raise ResdiagError(f"the model's {what} does not require grad (its forward runs under "
                           "torch.no_grad, detaches, or has no trainable parameter): no gradient can "
                           "reach its layers")


def loss_of(out: Any, batch: Batch, loss: str) -> torch.Tensor:
    """E for one forward's output ``out`` on ``batch`` (the rule in the module docstring)."""
    logits, own = split_output(out)
    if loss == "model":
        return own
    if logits.ndim == 3:
        v = logits.shape[-1]
        return nn.functional.cross_entropy(logits[:, :-1].reshape(-1, v), batch.tokens[:, 1:].reshape(-1))
    if batch.labels is None:
        raise ResdiagError("(batch, classes) logits need labels: pass (inputs, labels) as the batch")
    if loss == "cross_entropy":
        return nn.functional.cross_entropy(logits, batch.labels)
    target = nn.functional.one_hot(batch.labels, logits.shape[-1]).to(logits.dtype)
    return nn.functional.mse_loss(logits, target)


def error_fraction(out: Any, batch: Batch) -> torch.Tensor:
    """The fraction of wrong argmax predictions: of the labels for (batch, classes) logits, of the
    next tokens for (batch, T, V) logits; NaN when the output has no logits."""
    logits = split_output(out)[0]
    if logits is None:
        return torch.tensor(float("nan"))
    logits = logits.detach()
    if logits.ndim == 3:
        return (logits[:, :-1].argmax(-1) != batch.tokens[:, 1:]).double().mean()
    return (logits.argmax(1) != batch.labels).double().mean()

"""Which tensors of a model's output are its logits and its own loss: one rule for the run path
(resdiag.run.outputs, the loss E) and the probes (the output whose gradient they record).
docs/architectures.md, "Inputs and outputs". Depends on torch only, so every layer may use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch


def split_output(out: Any) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(logits, the model's own loss or None) of a forward's output."""
    if isinstance(out, torch.Tensor):
        return out, None
    if isinstance(out, Mapping) or hasattr(out, "keys") and hasattr(out, "__getitem__"):
        logits = out.get("logits") if hasattr(out, "get") else None
        own = out.get("loss") if hasattr(out, "get") else None
        return logits if isinstance(logits, torch.Tensor) else None, own
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0], None
    return None, None

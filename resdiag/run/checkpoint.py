"""Loading trained weights into a model: ``torch.load(weights_only=True)``, never arbitrary pickles."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from resdiag.errors import ResdiagError

_WRAPPERS = ("state_dict", "model_state_dict", "model")


def torch_load(path: Path, what: str):
    """``torch.load(path, weights_only=True)`` on the CPU, with any failure as one ResdiagError line
    that starts with ``what`` (e.g. "checkpoint x.pt"). torch's warnings are silenced: the error says
    enough."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        text = str(exc).strip()
        if text.startswith("Weights only load failed"):
            reason = "it holds pickled objects, not only tensors (resdiag loads with weights_only=True)"
        else:
            reason = (text.splitlines() or [type(exc).__name__])[0][:160] or type(exc).__name__
        raise ResdiagError(f"cannot read {what}: {reason}") from None


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The state dict in ``path``: a bare state dict, or one under a ``state_dict``/``model`` key.
    A ``module.`` prefix (DataParallel/DDP) is removed."""
    path = Path(path)
    if not path.is_file():
        raise ResdiagError(f"checkpoint not found: {path}")
    obj = torch_load(path, f"checkpoint {path}")
    if isinstance(obj, dict):
        for key in _WRAPPERS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ResdiagError(f"checkpoint {path} is not a state_dict (a dict of parameter name -> tensor)")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def load_checkpoint(model: nn.Module, path: Path) -> None:
    """Load ``path`` into ``model``; refuse missing, unexpected or mis-shaped keys, naming them."""
    state = load_state_dict(path)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected {_few(unexpected)}")
        raise ResdiagError(f"checkpoint {path} does not fit this model: {'; '.join(parts)}")
    for k, v in state.items():
        if v.shape != own[k].shape:
            raise ResdiagError(f"checkpoint {path} does not fit this model: {k} has shape "
                               f"{tuple(v.shape)}, the model expects {tuple(own[k].shape)}")
    model.load_state_dict(state)


def _few(keys: list[str], n: int = 3) -> str:
    more = f" and {len(keys) - n} more" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more

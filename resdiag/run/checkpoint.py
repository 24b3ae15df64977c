"""Loading trained weights into a model: ``torch.load(weights_only=True)``, never arbitrary pickles.

A checkpoint that records what it was written for (``resdiag train``'s: an ``identity`` with the
model's name, family and config) is refused when that is not the model being built; a bare state
dict is compared on what it holds (names, shapes, parameter count). Either way the result records
which weights were loaded: the path and the SHA-256 of the file.
"""

from __future__ import annotations

import hashlib
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
        raise ResdiagError(f"cannot read {what}: {_why(exc)}") from None


def _why(exc: Exception) -> str:
    """torch.load's failure in words: code in the file, a cut-off file, or not a torch file at all.
    (A truncated zip checkpoint fails with OSError EINVAL or a miniz message, a truncated pickle
    with EOFError; the weights-only unpickler names a class it refuses as 'Unsupported global'.)"""
    text = str(exc).strip()
    if "Unsupported global" in text or "Unsupported class" in text:
        return "it holds pickled objects, not only tensors (resdiag loads with weights_only=True)"
    if isinstance(exc, (EOFError, OSError)) or "zip archive" in text or "central directory" in text:
        return "the file is truncated or damaged (not a complete torch.save file)"
    if text.startswith("Weights only load failed"):
        return "not a file written by torch.save (or a damaged one)"
    return (text.splitlines() or [type(exc).__name__])[0][:160] or type(exc).__name__


def missing(path: Path, what: str) -> ResdiagError:
    """The error for a checkpoint path that is not a file: a folder, or nothing."""
    if path.is_dir():
        return ResdiagError(f"{what} {path} is a folder; give the checkpoint file in it")
    return ResdiagError(f"{what} not found: {path}")


TRAIN_SCHEMA = "resdiag.train-checkpoint"  # resdiag.train.checkpoint.SCHEMA
IDENTITY_KEYS = ("name", "family", "config")


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The state dict in ``path``: a bare state dict, or one under a ``state_dict``/``model`` key.
    A ``module.`` prefix (DataParallel/DDP) is removed."""
    return _state_dict(_read(Path(path)), Path(path))


def _read(path: Path):
    if not path.is_file():
        raise missing(path, "checkpoint")
    return torch_load(path, f"checkpoint {path}")


def _state_dict(obj, path: Path) -> dict[str, torch.Tensor]:
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


def recorded_identity(obj) -> dict | None:
    """What a ``resdiag train`` checkpoint says it was written for; None for a bare state dict."""
    if isinstance(obj, dict) and obj.get("schema") == TRAIN_SCHEMA and isinstance(obj.get("identity"), dict):
        return obj["identity"]
    return None


def check_written_for(path: Path, recorded: dict, identity: dict) -> None:
    """Refuse a checkpoint written for another model (``resdiag train --arch plain8`` weights loaded
    as resnet8 share every module name, so names and shapes alone would not see it)."""
    for key in IDENTITY_KEYS:
        if recorded.get(key) != identity.get(key):
            raise ResdiagError(f"checkpoint {path} was written by 'resdiag train' for {recorded.get('name')} "
                               f"({recorded.get('family')}), not for {identity.get('name')} ({key} differs): "
                               f"measure it as {recorded.get('name')}")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_checkpoint(model: nn.Module, path: Path, identity: dict | None = None) -> dict:
    """Load ``path`` into ``model``; refuse a checkpoint written for another model than ``identity``
    (``name``, ``family``, ``config``), and missing, unexpected or mis-shaped keys, naming them.

    Returns the record of what was loaded: path, SHA-256 of the file, kind ("resdiag-train" or
    "state_dict"), the model it says it was written for (or None), tensors and values loaded."""
    path = Path(path)
    obj = _read(path)
    recorded = recorded_identity(obj)
    if recorded is not None and identity is not None:
        check_written_for(path, recorded, identity)
    state = _state_dict(obj, path)
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
    return {"path": str(path), "sha256": sha256(path),
            "kind": "resdiag-train" if recorded is not None else "state_dict",
            "written_for": recorded.get("name") if recorded is not None else None,
            "tensors": len(state), "values": sum(v.numel() for v in state.values())}


def _few(keys: list[str], n: int = 3) -> str:
    more = f" and {len(keys) - n} more" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more

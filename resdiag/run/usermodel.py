"""Users' own models: ``package.module:factory``, a callable that returns an ``nn.Module``.

Importing the module runs the user's code, exactly as ``python -c 'import package.module'`` would:
only point resdiag at code you trust. resdiag never evaluates strings from configs or checkpoints.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import torch
from torch import nn

from resdiag.errors import ResdiagError


def load_user_model(spec: str) -> nn.Module:
    """Import ``module:callable`` (the current directory is on the import path) and call it."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ResdiagError(f"--model {spec!r}: use package.module:factory, a callable returning an nn.Module")
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or anything their module raises on import
        raise ResdiagError(f"--model {spec!r}: cannot import {module_name} ({type(exc).__name__}: "
                           f"{_first_line(exc)})") from None
    target = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ResdiagError(f"--model {spec!r}: {module_name} has no attribute {attr!r}")
        target = getattr(target, part)
    if isinstance(target, nn.Module):
        return target
    if not callable(target):
        raise ResdiagError(f"--model {spec!r}: {attr} is a {type(target).__name__}, not a callable")
    try:
        model = target()
    except Exception as exc:
        raise ResdiagError(f"--model {spec!r}: calling {attr}() failed ({type(exc).__name__}: "
                           f"{_first_line(exc)})") from None
    if not isinstance(model, nn.Module):
        raise ResdiagError(f"--model {spec!r}: {attr}() returned a {type(model).__name__}, not an nn.Module")
    return model


def check_forward(model: nn.Module, input_shape: tuple[int, ...], num_classes: int | None) -> int:
    """Run one forward pass of 2 samples on the CPU; return the number of outputs per sample.

    A forward that fails, or returns something other than one (batch, classes) tensor, is a
    ResdiagError naming what went wrong.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, *input_shape))
    except Exception as exc:
        raise ResdiagError(f"the model's forward fails on input shape {','.join(map(str, input_shape))} "
                           f"({type(exc).__name__}: {_first_line(exc)})") from None
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor):
        raise ResdiagError(f"the model's forward returned a {type(out).__name__}; resdiag needs one "
                           "tensor of logits (batch, classes)")
    if out.ndim != 2 or out.shape[0] != 2:
        raise ResdiagError(f"the model's forward returned shape {tuple(out.shape)}; resdiag needs "
                           "logits of shape (batch, classes)")
    if num_classes is not None and out.shape[1] != num_classes:
        raise ResdiagError(f"the model outputs {out.shape[1]} classes, not --num-classes {num_classes}")
    return int(out.shape[1])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:160] if text else "no message"


def user_model(spec: str, input_shape: tuple[int, ...] | None, num_classes: int | None,
               checkpoint: Path | None = None):
    """Load ``spec``, its checkpoint, and check its forward: (model, input_shape, num_classes, info)."""
    from resdiag.run.checkpoint import load_checkpoint
    from resdiag.run.common import model_info

    shape = tuple(input_shape) if input_shape else (3, 32, 32)
    model = load_user_model(spec)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    classes = check_forward(model, shape, num_classes)
    return model, shape, classes, model_info(model, name=spec)

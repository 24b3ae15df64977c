"""Users' own models: ``package.module:factory``, a callable that returns an ``nn.Module``.

Importing the module runs the user's code, exactly as ``python -c 'import package.module'`` would:
only point resdiag at code you trust. resdiag never evaluates strings from configs or checkpoints.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:160] if text else "no message"

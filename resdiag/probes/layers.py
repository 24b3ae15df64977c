"""Which modules the probes watch: the weight layers and the block boundaries of a model.

Works on resdiag's own networks and on other people's: wrappers (DataParallel, DDP,
``torch.compile``) are looked through so names carry no ``module.``/``_orig_mod.`` prefix, and
blocks are found by marker, by class name, or by the caller's regular expression.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

from resdiag.errors import ResdiagError

WEIGHT_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
# torchvision's BasicBlock/Bottleneck, timm's blocks, "ResidualUnit", "ResBlock", ...
BLOCK_CLASS = re.compile(r"(Block|Bottleneck|Unit)$")


@dataclass(frozen=True)
class Layer:
    name: str  # qualified module name, e.g. "stage1.0.branch.conv1"
    kind: str  # "conv" or "linear"
    module: nn.Module

    @property
    def weight(self) -> nn.Parameter:
        return self.module.weight

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.module.weight.shape)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside DataParallel / DistributedDataParallel / torch.compile wrappers.

    Probing the compiled module's original runs it eagerly; hooks do not fire inside compiled
    graphs, so this is the only way to read per-layer numbers from a compiled model.
    """
    while True:
        inner = getattr(model, "_orig_mod", None)  # torch.compile's OptimizedModule
        if isinstance(inner, nn.Module):
            model = inner
            continue
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
            continue
        return model


def find_layers(model: nn.Module) -> list[Layer]:
    """Every conv and linear layer, in registration order; a weight shared by several layers is
    listed once, under the first name that holds it."""
    seen: set[int] = set()
    layers = []
    for name, module in unwrap(model).named_modules():
        weight = getattr(module, "weight", None)
        if isinstance(module, WEIGHT_LAYERS) and isinstance(weight, nn.Parameter) and id(weight) not in seen:
            seen.add(id(weight))
            kind = "linear" if isinstance(module, nn.Linear) else "conv"
            layers.append(Layer(name, kind, module))
    return layers


def find_blocks(model: nn.Module, pattern: str | None = None) -> list[tuple[str, nn.Module]]:
    """The blocks whose inputs are the x_l of the seed's equations, outermost first, in order.

    ``pattern``: a regular expression matched (``re.fullmatch``) against qualified module names.
    Otherwise: modules marked ``resdiag_block = True`` (every block resdiag builds is); failing
    that, modules whose class name ends in Block, Bottleneck or Unit.
    """
    root = unwrap(model)
    if pattern is not None:
        try:
            rx = re.compile(pattern)
        except re.error as exc:
            raise ResdiagError(f"--blocks {pattern!r} is not a valid regular expression ({exc})") from None
        found = _outermost((n, m) for n, m in root.named_modules() if n and rx.fullmatch(n))
        if not found:
            raise ResdiagError(f"--blocks {pattern!r} matches no module name (e.g. 'layer[1-4]\\.\\d+')")
        return found
    marked = _outermost((n, m) for n, m in root.named_modules() if getattr(m, "resdiag_block", False))
    if marked:
        return marked
    return _outermost(
        (n, m) for n, m in root.named_modules() if n and BLOCK_CLASS.search(type(m).__name__)
    )


def _outermost(candidates) -> list[tuple[str, nn.Module]]:
    blocks: list[tuple[str, nn.Module]] = []
    for name, module in candidates:
        if not any(name.startswith(f"{outer}.") for outer, _ in blocks):
            blocks.append((name, module))
    return blocks

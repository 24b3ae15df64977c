"""Which modules the probes watch: the weight layers and the block boundaries of a model."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

WEIGHT_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


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


def find_layers(model: nn.Module) -> list[Layer]:
    """Every conv and linear layer, in registration order; a weight shared by several layers is
    listed once, under the first name that holds it."""
    seen: set[int] = set()
    layers = []
    for name, module in model.named_modules():
        if isinstance(module, WEIGHT_LAYERS) and id(module.weight) not in seen:
            seen.add(id(module.weight))
            kind = "linear" if isinstance(module, nn.Linear) else "conv"
            layers.append(Layer(name, kind, module))
    return layers


def find_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The blocks whose inputs are the x_l of the seed's equations: modules marked with
    ``resdiag_block = True`` (every block resdiag builds is), outermost first, in order."""
    blocks: list[tuple[str, nn.Module]] = []
    for name, module in model.named_modules():
        if getattr(module, "resdiag_block", False):
            if not any(name.startswith(f"{outer}.") for outer, _ in blocks):
                blocks.append((name, module))
    return blocks

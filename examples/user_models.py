"""Models written the way people write them, for `resdiag ... --model examples.user_models:NAME`.

`torchvision_style_resnet` copies torchvision's BasicBlock idioms: `ReLU(inplace=True)` and
`out += identity`. `twice_called` applies one block twice per forward. Try:

    resdiag grad-flow --model examples.user_models:torchvision_style_resnet --input-shape 3,32,32
"""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock, trimmed: in-place ReLU and an in-place residual sum."""

    def __init__(self, planes: int):
        super().__init__()
        self.conv1 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        out += identity
        out = self.relu(out)
        return out


class TinyResNet(nn.Module):
    def __init__(self, planes: int = 8, blocks: int = 3, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, planes, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(*[BasicBlock(planes) for _ in range(blocks)])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer1(x)
        return self.fc(torch.flatten(self.pool(x), 1))


class TwiceCalled(nn.Module):
    """One block applied twice: its weights are shared, its two calls are two boundaries."""

    def __init__(self, planes: int = 8, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Conv2d(3, planes, 3, padding=1)
        self.block = BasicBlock(planes)
        self.fc = nn.Linear(planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.block(x)
        x = self.block(x)
        return self.fc(x.mean((2, 3)))


def torchvision_style_resnet() -> nn.Module:
    return TinyResNet()


def twice_called() -> nn.Module:
    return TwiceCalled()


# For the bad-input tests: a factory that fails, one that returns no module, a non-callable.
def broken() -> nn.Module:
    raise RuntimeError("weights server unreachable")


def not_a_module():
    return {"conv": 3}


NOT_CALLABLE = 42

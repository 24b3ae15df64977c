"""CIFAR ResNets of He et al. 2015 (section 4.2) and 2016, and their plain twins.

Stem: 3x3 conv with 16 filters; three stages of {16, 32, 64} filters on {32, 16, 8} maps
(bottlenecks: {64, 128, 256} outputs); global average pooling; a linear classifier.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from resdiag.zoo.blocks import (
    ResidualBlock,
    conv1x1,
    conv3x3,
    make_branch,
    make_combine,
    make_shortcut,
    norm2d,
)
from resdiag.zoo.config import ResNetConfig

_PREACT = ("preact", "relu_preact")


class CifarResNet(nn.Module):
    def __init__(self, cfg: ResNetConfig):
        super().__init__()
        self.config = cfg
        c0 = max(1, round(16 * cfg.width))
        cin = cfg.input_shape[0]
        # Pre-activation nets start with a bare conv: the first block's BN-ReLU follows it, and
        # a final BN-ReLU comes before pooling (He et al. 2016, section 4 and appendix).
        preact = cfg.placement in _PREACT
        stem = [("conv", conv3x3(cin, c0))]
        if not preact:
            stem += [("bn", norm2d(cfg.norm, c0)), ("relu", nn.ReLU())]
        self.stem = nn.Sequential(OrderedDict(stem))
        expansion = 4 if cfg.block == "bottleneck" else 1
        channels = c0
        for i, mult in enumerate((1, 2, 4), start=1):
            stage, channels = self._stage(cfg, channels, c0 * mult, expansion, 1 if i == 1 else 2)
            self.add_module(f"stage{i}", stage)
        head = [("bn", norm2d(cfg.norm, channels)), ("relu", nn.ReLU())] if preact else []
        head += [("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten())]
        self.head = nn.Sequential(OrderedDict(head))
        self.fc = nn.Linear(channels, cfg.num_classes)
        _init(self, cfg.init, cfg.init_gain)

    @staticmethod
    def _stage(cfg: ResNetConfig, cin: int, width: int, expansion: int, stride: int):
        blocks = []
        for j in range(cfg.blocks_per_stage):
            cout = width * expansion
            s = stride if j == 0 else 1
            if cfg.block == "bottleneck":
                convs = [conv1x1(cin, width), conv3x3(width, width, s), conv1x1(width, cout)]
            else:
                convs = [conv3x3(cin, cout, s), conv3x3(cout, cout)]
            branch, post = make_branch(convs, cfg.placement, cfg.norm)
            shortcut = make_shortcut(cin, cout, s, cfg.shortcut.kind, cfg.projection, cfg.norm)
            if cfg.plain:
                shortcut = nn.Identity()  # never used; keeps the module tree of the twins aligned
            combine = make_combine(cfg.shortcut, cfg.plain, cin, cout, s)
            blocks.append(ResidualBlock(branch, shortcut, combine, post))
            cin = cout
        return nn.Sequential(*blocks), cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.stage1(x)
        x = self.stage2(x)
        x = self.stage3(x)
        x = self.head(x)
        return self.fc(x)


def _init(model: nn.Module, mode: str, gain: float) -> None:
    """He et al. 2015 init (normal, std sqrt(2/n)) for convs; BN weight 1, bias 0; times ``gain``."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        if gain != 1.0 and isinstance(m, (nn.Conv2d, nn.Linear)):
            with torch.no_grad():
                m.weight.mul_(gain)

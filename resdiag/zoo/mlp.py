"""Residual and plain MLPs in the pure form of the equations of He et al. 2016 (Identity Mappings).

x_0 = W_in flatten(input); x_{l+1} = lam * x_l + f_scale * W_l relu(norm(x_l)) (residual) or
x_{l+1} = W_l relu(norm(x_l)) (plain); logits = W_out relu(norm(x_L)). One linear layer per block,
so thousands of blocks stay cheap on a CPU.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from resdiag.zoo.blocks import ResidualBlock, make_combine
from resdiag.zoo.config import MLPConfig


def _norm1d(kind: str, width: int) -> nn.Module:
    return nn.BatchNorm1d(width) if kind == "batch" else nn.Identity()


class MLP(nn.Module):
    def __init__(self, cfg: MLPConfig):
        super().__init__()
        self.config = cfg
        w = cfg.width
        self.stem = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(cfg.input_shape), w))
        blocks = []
        for _ in range(cfg.depth):
            branch = nn.Sequential(
                OrderedDict(norm=_norm1d(cfg.norm, w), relu=nn.ReLU(), fc=nn.Linear(w, w))
            )
            combine = make_combine(cfg.shortcut, cfg.plain, w, w, 1)
            blocks.append(ResidualBlock(branch, nn.Identity(), combine, nn.Identity()))
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            OrderedDict(norm=_norm1d(cfg.norm, w), relu=nn.ReLU(), fc=nn.Linear(w, cfg.num_classes))
        )
        self._init(cfg)

    def _init(self, cfg: MLPConfig) -> None:
        gain = cfg.resolved_branch_gain
        for name, m in self.named_modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
                with torch.no_grad():
                    m.weight.mul_(cfg.init_gain * (gain if name.startswith("blocks.") else 1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.blocks(x)
        return self.head(x)

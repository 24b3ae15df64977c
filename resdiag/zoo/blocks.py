"""Residual blocks with every shortcut variant and activation placement of He et al. 2016.

A block is ``out = post(combine(x, shortcut(x), branch(x)))``; the variants only choose which
modules fill those four slots, so ``forward`` is the same four lines for every one of them.
No in-place operations anywhere: backward hooks must work on everything built here.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from resdiag.zoo.config import Shortcut


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(cin: int, cout: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=bias)


def norm2d(kind: str, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if kind == "batch" else nn.Identity()


# ----------------------------------------------------------------------------- shortcuts


class PadShortcut(nn.Module):
    """Option A of He et al. 2015: identity, subsampled by the stride and zero-padded in channels."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.cin, self.cout, self.stride = cin, cout, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.cout - self.cin))


class Projection(nn.Sequential):
    """Option B of He et al. 2015: a strided 1x1 convolution (with BN when the net has BN)."""

    def __init__(self, cin: int, cout: int, stride: int, norm: str):
        super().__init__(OrderedDict(conv=conv1x1(cin, cout, stride), bn=norm2d(norm, cout)))


# ----------------------------------------------------------------------------- combiners


class Sum(nn.Module):
    def forward(self, x, s, f):
        return s + f


class BranchOnly(nn.Module):
    """The plain twin: no shortcut at all."""

    def forward(self, x, s, f):
        return f


class Scale(nn.Module):
    """Constant scaling: lam * shortcut + f_scale * F (He et al. 2016, Fig. 2b)."""

    def __init__(self, lam: float, f_scale: float):
        super().__init__()
        self.lam, self.f_scale = lam, f_scale

    def forward(self, x, s, f):
        return self.lam * s + self.f_scale * f


class Gate(nn.Module):
    """g = sigmoid(conv1x1(x) + b_g); exclusive: (1-g) s + g F, shortcut-only: (1-g) s + F.

    He et al. 2016, Fig. 2c/2d; b_g starts at ``bias`` (their best was -6: g near 0, so
    the block starts close to an identity).
    """

    def __init__(self, cin: int, cout: int, stride: int, bias: float, exclusive: bool):
        super().__init__()
        self.gate = conv1x1(cin, cout, stride, bias=True)
        nn.init.constant_(self.gate.bias, bias)
        self.exclusive = exclusive

    def forward(self, x, s, f):
        g = torch.sigmoid(self.gate(x))
        scaled = (1 - g) * s
        return scaled + (g * f if self.exclusive else f)


class DropShortcut(nn.Module):
    """Dropout on the shortcut, without the usual 1/(1-p) rescaling, as He et al. 2016 (Fig. 2f)
    describe it: in expectation the shortcut is scaled by 1-p. In eval mode it is scaled by 1-p."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x, s, f):
        if self.training:
            keep = torch.bernoulli(torch.full_like(s, 1 - self.p))
            return keep * s + f
        return (1 - self.p) * s + f


# ----------------------------------------------------------------------------- the block


class ResidualBlock(nn.Module):
    """``out = post(combine(x, shortcut(x), branch(x)))``.

    ``resdiag_block = True`` marks the block boundaries x_l whose gradients the probes record.
    """

    resdiag_block = True

    def __init__(self, branch: nn.Module, shortcut: nn.Module, combine: nn.Module, post: nn.Module):
        super().__init__()
        self.branch = branch
        self.shortcut = shortcut
        self.combine = combine
        self.post = post

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.branch(x)
        s = self.shortcut(x)
        out = self.combine(x, s, f)
        return self.post(out)


def make_shortcut(cin: int, cout: int, stride: int, kind: str, projection: str, norm: str) -> nn.Module:
    """What carries x to the addition: identity, option A/B where the shape changes, or 1x1 conv."""
    if kind == "conv":
        return conv1x1(cin, cout, stride)
    if cin == cout and stride == 1:
        return nn.Identity()
    if projection == "B":
        return Projection(cin, cout, stride, norm)
    return PadShortcut(cin, cout, stride)


def make_combine(sc: Shortcut, plain: bool, cin: int, cout: int, stride: int) -> nn.Module:
    if plain:
        return BranchOnly()
    if sc.kind == "scale":
        return Scale(sc.lam, sc.f_scale)
    if sc.kind in ("gate", "shortcut_gate"):
        return Gate(cin, cout, stride, sc.gate_bias, exclusive=sc.kind == "gate")
    if sc.kind == "dropout":
        return DropShortcut(sc.p)
    return Sum()


def make_branch(convs: list[nn.Conv2d], placement: str, norm: str) -> tuple[nn.Sequential, nn.Module]:
    """The residual branch F and the post-addition ops for one placement (He et al. 2016, Fig. 4).

    post            conv-BN-ReLU-...-conv-BN | add | ReLU
    bn_after_add    conv-BN-ReLU-...-conv    | add | BN-ReLU
    relu_before_add conv-BN-ReLU-...-conv-BN-ReLU | add
    relu_preact     ReLU-conv-BN-...-ReLU-conv-BN | add
    preact          BN-ReLU-conv-...-BN-ReLU-conv | add
    """
    layers: list[tuple[str, nn.Module]] = []
    last = len(convs)
    cout = convs[-1].out_channels
    for i, conv in enumerate(convs, start=1):
        if placement == "preact":
            layers += [(f"bn{i}", norm2d(norm, conv.in_channels)), (f"relu{i}", nn.ReLU())]
        elif placement == "relu_preact" and i == 1:
            layers.append(("relu0", nn.ReLU()))
        layers.append((f"conv{i}", conv))
        if placement == "preact":
            continue
        if not (placement == "bn_after_add" and i == last):
            layers.append((f"bn{i}", norm2d(norm, conv.out_channels)))
        if i < last or placement == "relu_before_add":
            layers.append((f"relu{i}", nn.ReLU()))
    post: nn.Module = nn.Identity()
    if placement == "post":
        post = nn.ReLU()
    elif placement == "bn_after_add":
        post = nn.Sequential(OrderedDict(bn=norm2d(norm, cout), relu=nn.ReLU()))
    return nn.Sequential(OrderedDict(layers)), post

"""Models written the way people write them, for `resdiag ... --model examples.user_models:NAME`.

`torchvision_style_resnet` copies torchvision's BasicBlock idioms: `ReLU(inplace=True)` and
`out += identity`. `twice_called` applies one block twice per forward. `tiny_vit` is a ViT written
as timm writes one (a `Block` class, pre-LN, here with nn.MultiheadAttention), and
`tiny_vit_no_residual` the same net without its residual sums. `checkpointed_resnet` and
`checkpointed_resnet_reentrant` are `torchvision_style_resnet` with every block under activation
checkpointing (`torch.utils.checkpoint`, non-reentrant and reentrant). `frozen_backbone`,
`detached_stream` and `unused_head` are the cases of a verdict's scope (docs/gradflow.md, "Scope"):
layers frozen by the user, a `detach()` that cuts the residual stream, a head never called. Try:

    resdiag grad-flow --model examples.user_models:torchvision_style_resnet --input-shape 3,32,32
    resdiag rank --model examples.user_models:tiny_vit_no_residual --input-shape 3,32,32
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


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


class CheckpointedResNet(TinyResNet):
    """TinyResNet with every block run under ``torch.utils.checkpoint``: recomputed in backward."""

    def __init__(self, reentrant: bool):
        super().__init__()
        self.reentrant = reentrant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        for block in self.layer1:
            x = checkpoint(block, x, use_reentrant=self.reentrant)
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


class Block(nn.Module):
    """A timm-style ViT block: x = x + attn(norm1(x)); x = x + mlp(norm2(x)) (Dosovitskiy et al.
    2021), or without the sums (``residual=False``). Its attention returns a tuple, as
    nn.MultiheadAttention does."""

    def __init__(self, dim: int, heads: int, residual: bool = True):
        super().__init__()
        self.residual = residual
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        a = self.attn(h, h, h, need_weights=False)[0]
        x = x + a if self.residual else a
        m = self.mlp(self.norm2(x))
        return x + m if self.residual else m


class TinyViT(nn.Module):
    """Patch embedding (a strided conv), a class token, learned positions, ``depth`` Blocks, a final
    LayerNorm and a linear head on the class token: the layout of timm's VisionTransformer."""

    def __init__(self, depth: int = 6, dim: int = 64, heads: int = 4, patch: int = 8, image: int = 32,
                 num_classes: int = 10, residual: bool = True):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, (image // patch) ** 2 + 1, dim))
        self.blocks = nn.Sequential(*[Block(dim, heads, residual) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.blocks(x + self.pos_embed)
        return self.head(self.norm(x)[:, 0])


def tiny_vit() -> nn.Module:
    return TinyViT()


def tiny_vit_no_residual() -> nn.Module:
    return TinyViT(residual=False)


def torchvision_style_resnet() -> nn.Module:
    return TinyResNet()


def checkpointed_resnet() -> nn.Module:
    return CheckpointedResNet(reentrant=False)


def checkpointed_resnet_reentrant() -> nn.Module:
    return CheckpointedResNet(reentrant=True)


def twice_called() -> nn.Module:
    return TwiceCalled()


class DetachedStream(TinyResNet):
    """TinyResNet with a ``detach()`` after its second block: no gradient reaches the stem and the first
    two blocks (a bug a refactor can bring in: ``x = x.detach()``, ``x.data``, a numpy round trip)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        for i, block in enumerate(self.layer1):
            x = block(x).detach() if i == 1 else block(x)
        return self.fc(torch.flatten(self.pool(x), 1))


def frozen_backbone() -> nn.Module:
    """Fine-tuning: the stem and the first two of four blocks frozen (``requires_grad_(False)``)."""
    model = TinyResNet(blocks=4)
    for part in (model.conv1, model.bn1, model.layer1[0], model.layer1[1]):
        part.requires_grad_(False)
    return model


def detached_stream() -> nn.Module:
    return DetachedStream(blocks=4)


def unused_head() -> nn.Module:
    """A trainable auxiliary head that the forward never calls."""
    model = TinyResNet(blocks=4)
    model.aux = nn.Linear(8, 10)
    return model


# For the bad-input tests: a factory that fails, one that returns no module, a non-callable.
def broken() -> nn.Module:
    raise RuntimeError("weights server unreachable")


def not_a_module():
    return {"conv": 3}


NOT_CALLABLE = 42

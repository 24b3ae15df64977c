"""Shared problems of the training-stack tests: a residual net without batch statistics (so that
micro-batches and one big batch have the same gradient), and autograd references for it."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint, checkpoint_sequential


class ResBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, 2 * width)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(2 * width, width)

    def forward(self, x):
        h = self.fc2(self.act(self.fc1(self.norm(x))))
        return x + h


class ResNetMLP(nn.Module):
    """stem -> depth ResBlocks -> head; ``ckpt`` = None, "reentrant" or "non_reentrant" wraps each
    block call in torch.utils.checkpoint; "sequential": checkpoint_sequential in 2 segments."""

    def __init__(self, width: int = 16, depth: int = 4, classes: int = 5, ckpt: str | None = None):
        super().__init__()
        self.stem = nn.Linear(8, width)
        self.blocks = nn.ModuleList(ResBlock(width) for _ in range(depth))
        self.head = nn.Linear(width, classes)
        self.ckpt = ckpt

    def forward(self, x):
        x = self.stem(x)
        if self.ckpt == "sequential":  # two reentrant segments: inner block inputs have no autograd
            return self.head(checkpoint_sequential(list(self.blocks), 2, x, use_reentrant=True))
        for block in self.blocks:
            if self.ckpt is None:
                x = block(x)
            else:
                x = checkpoint(block, x, use_reentrant=self.ckpt == "reentrant")
        return self.head(x)


def batch(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 8, generator=g), torch.randint(0, 5, (n,), generator=g)


def reference(model: nn.Module, x, y, blocks: list[nn.Module]):
    """(||p.grad|| by name, [||dE/dx_l||] at every block input and the last output) of one backward
    of the whole batch, read by plain forward hooks and torch.autograd.grad, not by resdiag."""
    xs: list[torch.Tensor] = []
    handles = [b.register_forward_pre_hook(lambda m, a: xs.append(a[0])) for b in blocks]
    handles.append(blocks[-1].register_forward_hook(lambda m, a, o: xs.append(o)))
    try:
        loss = nn.functional.cross_entropy(model(x), y)
    finally:
        for h in handles:
            h.remove()
    params = [(n, p) for n, p in model.named_parameters()]
    grads = torch.autograd.grad(loss, [p for _, p in params] + xs)
    weights = {n: float(torch.linalg.vector_norm(g.double())) for (n, _), g in zip(params, grads)}
    return weights, [float(torch.linalg.vector_norm(g.double())) for g in grads[len(params):]]

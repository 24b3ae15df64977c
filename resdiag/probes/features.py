"""The feature probe: what each block passes on, reduced on the device to Gram statistics.

Usage::

    with torch.no_grad(), FeatureProbe(model) as probe:
        model(x)
    probe.boundaries   # one FeatureRank per x_l (inputs of every block, output of the last)
    probe.branches     # std of each block's residual-branch output F(x_l) (He et al. 2015, Fig. 7)

Each response X is reduced in the hook to its Gram matrix X X^T and entry sum
(``resdiag.metrics.features``), so a 1202-layer network never holds its activations; the metrics
are computed for all layers at once, with one host sync, when ``collect`` is called.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from resdiag.metrics.features import feature_ranks_from_gram, gram_stats
from resdiag.metrics.rank import FeatureRank
from resdiag.probes.grad import _boundaries_to_keep
from resdiag.probes.layers import find_blocks


class FeatureProbe:
    def __init__(self, model: nn.Module, blocks: list[tuple[str, nn.Module]] | None = None):
        """``blocks``: (name, module) pairs whose inputs are the x_l; found by ``find_blocks``
        when not given."""
        self.model = model
        self.blocks = find_blocks(model) if blocks is None else blocks
        self._handles: list = []
        self._stats: list[tuple[str, tuple[int, ...], torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._branch: list[tuple[str, torch.Tensor, torch.Tensor, int]] = []
        self._eps = 0.0
        self._calls: dict[str, int] = {}
        self.boundaries: list[tuple[str, tuple[int, ...], FeatureRank]] = []
        self.branches: list[tuple[str, float]] = []

    def __enter__(self) -> FeatureProbe:
        try:
            last = len(self.blocks) - 1
            for i, (name, block) in enumerate(self.blocks):
                self._handles.append(block.register_forward_pre_hook(self._pre_hook(name)))
                if i == last:
                    self._handles.append(block.register_forward_hook(self._out_hook(name)))
                branch = getattr(block, "branch", None)
                if isinstance(branch, nn.Module):
                    self._handles.append(branch.register_forward_hook(self._branch_hook(name)))
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _record(self, x, label: str) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim < 2:
            return
        gram, total = gram_stats(x)
        dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
        self._eps = max(self._eps, torch.finfo(dtype).eps)
        self._stats.append((label, tuple(x.shape), gram, total, torch.isfinite(x).all()))

    def _label(self, name: str, where: str) -> str:
        key = f"{name}:{where}"
        n = self._calls[key] = self._calls.get(key, 0) + 1
        return key if n == 1 else f"{key}#{n}"

    def _pre_hook(self, name: str):
        def hook(module, args):
            if args:
                self._record(args[0], self._label(name, "in"))

        return hook

    def _out_hook(self, name: str):
        def hook(module, args, output):
            self._record(output, self._label(name, "out"))

        return hook

    def _branch_hook(self, name: str):
        def hook(module, args, output):
            if isinstance(output, torch.Tensor):
                out = output.detach().double()
                self._branch.append((name, out.sum(), out.square().sum(), out.numel()))

        return hook

    def collect(self) -> None:
        """Compute the metrics of everything recorded since the last call (one sync per group)."""
        stats, self._stats, self._calls = self._stats, [], {}
        stats = [stats[i] for i in _boundaries_to_keep([s[0] for s in stats])]
        if stats:
            grams = torch.stack([s[2] for s in stats])
            sums = torch.stack([s[3] for s in stats])
            finite = torch.stack([s[4] for s in stats]).cpu().tolist()
            features = [math.prod(s[1][1:]) for s in stats]
            ranks = feature_ranks_from_gram(grams, sums, features, finite, self._eps)
            self.boundaries += [(s[0], s[1], r) for s, r in zip(stats, ranks, strict=True)]
        branch, self._branch = self._branch, []
        if branch:
            moments = torch.stack([torch.stack([b[1], b[2]]) for b in branch]).cpu().tolist()
            for (name, _, _, n), (s1, s2) in zip(branch, moments, strict=True):
                var = s2 / n - (s1 / n) ** 2
                self.branches.append((name, math.sqrt(var) if var >= 0 else math.nan))

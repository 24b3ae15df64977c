"""The feature probe: what each block passes on, reduced on the device to Gram statistics.

Usage::

    with torch.no_grad(), FeatureProbe(model) as probe:
        model(x)
    probe.boundaries   # one FeatureRank per x_l (inputs of every block, output of the last)
    probe.branches     # std of each block's residual-branch output F(x_l) (He et al. 2015, Fig. 7)
    probe.tokens       # one TokenRank per 3-D (batch, tokens, features) x_l (docs/tokens.md)

Inside a training step (the Monitor's): a block call made while autograd runs a backward is an
activation-checkpointing recomputation and is ignored (the first pass recorded it, with or without
autograd); with ``first_micro_batch=True``, a forward that follows a backward (the next
micro-batch of a gradient-accumulation step) is ignored too, so the ranks are those of the step's
first micro-batch: a sample of its inputs, not their concatenation (the Gram of a concatenation
needs every micro-batch's features at once). docs/api.md, "Training stacks".

Each response X is reduced in the hook to its centred Gram matrix and a few moments, in float64
(``resdiag.metrics.features.GramStats``), so a 1202-layer network never holds its activations; the metrics
are computed for all layers at once, with one host sync, when ``collect`` is called.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from resdiag.metrics.features import GramStats, feature_ranks_from_gram, gram_stats
from resdiag.metrics.rank import FeatureRank
from resdiag.metrics.tokens import TokenRank, token_rank_from_stats, token_stats
from resdiag.probes.boundaries import BoundaryHooks, in_backward, keep_boundaries, output_to_hook
from resdiag.probes.layers import as_btd, find_blocks
from resdiag.probes.layout import LAYOUTS, LayoutVotes


class FeatureProbe(BoundaryHooks):
    def __init__(self, model: nn.Module, blocks: list[tuple[str, nn.Module]] | None = None,
                 first_micro_batch: bool = False):
        """``blocks``: (name, module) pairs whose inputs are the x_l; found by ``find_blocks``
        when not given. ``first_micro_batch``: record only until the first backward (above)."""
        super().__init__(find_blocks(model) if blocks is None else blocks)
        self.model = model
        self._stats: list[tuple[str, tuple[int, ...], GramStats]] = []
        self._branch: list[tuple[str, torch.Tensor, torch.Tensor, int]] = []
        self.boundaries: list[tuple[str, tuple[int, ...], FeatureRank]] = []
        self.branches: list[tuple[str, float]] = []
        # label -> {layout: (btd shape, batch-mean token stats)}: one layout once the block's is
        # decided, every candidate at its first call (resdiag/probes/layout.py)
        self._token_stats: list[tuple[str, dict[str, tuple[tuple[int, ...], torch.Tensor]]]] = []
        self.tokens: list[tuple[str, tuple[int, ...], TokenRank]] = []
        self.layout_unknown: list[str] = []  # 3-D boundaries whose token axes could not be decided
        self._votes = LayoutVotes(self.blocks)
        self.first_micro_batch = first_micro_batch
        self._backward_seen = False

    def _skip(self) -> bool:
        """Whether a call now is a recomputation or belongs to a later micro-batch."""
        return in_backward() or (self.first_micro_batch and self._backward_seen)

    def _seen_backward(self, grad) -> None:
        self._backward_seen = True

    def _install(self) -> None:
        for name, block in self.blocks:
            self._handles += self._votes.hooks(name, block)
        if self.first_micro_batch:
            self._handles.append(self.model.register_forward_hook(self._output_hook))
        for name, block in self.blocks:
            branch = getattr(block, "branch", None)
            if isinstance(branch, nn.Module):
                self._handles.append(branch.register_forward_hook(self._branch_hook(name)))

    def _output_hook(self, module, args, output) -> None:
        out = output_to_hook(output)
        if out is not None:
            out.register_hook(self._seen_backward)

    def close(self) -> None:
        super().close()
        self._votes.close()

    def _on_boundary(self, x, label: str) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim < 2 or self._skip():
            return
        self._stats.append((label, tuple(x.shape), gram_stats(x)))
        if x.ndim == 3:
            layout = self._votes.layout[label.rsplit(":", 1)[0]]
            candidates = LAYOUTS if layout is None else (layout,) if layout in LAYOUTS else ()
            seqs = {lay: as_btd(x, lay) for lay in candidates}
            self._token_stats.append((label, {lay: (tuple(s.shape), token_stats(s).mean(0))
                                              for lay, s in seqs.items()}))

    def _branch_hook(self, name: str):
        def hook(module, args, output):
            if isinstance(output, torch.Tensor) and not self._skip():
                out = output.detach().double()
                self._branch.append((name, out.sum(), out.square().sum(), out.numel()))

        return hook

    def _collect_tokens(self) -> None:
        tokens, self._token_stats = self._token_stats, []
        if not tokens:
            return
        tokens = [tokens[i] for i in keep_boundaries([t[0] for t in tokens])]
        chosen = []
        for label, by_layout in tokens:
            layout = self._votes.layout.get(label.rsplit(":", 1)[0])
            if layout in by_layout:
                chosen.append((label, *by_layout[layout]))
            elif label not in self.layout_unknown:
                self.layout_unknown.append(label)
        if chosen:
            means = torch.stack([t[2] for t in chosen]).cpu()
            self.tokens += [(label, shape, token_rank_from_stats(m, shape))
                            for (label, shape, _), m in zip(chosen, means, strict=True)]

    def collect(self) -> None:
        """Compute the metrics of everything recorded since the last call (one sync per group)."""
        stats, self._stats, self._calls = self._stats, [], {}
        stats = [stats[i] for i in keep_boundaries([s[0] for s in stats])]
        ranks = feature_ranks_from_gram([s[2] for s in stats])
        self.boundaries += [(s[0], s[1], r) for s, r in zip(stats, ranks, strict=True)]
        self._collect_tokens()
        branch, self._branch = self._branch, []
        if branch:
            moments = torch.stack([torch.stack([b[1], b[2]]) for b in branch]).cpu().tolist()
            for (name, _, _, n), (s1, s2) in zip(branch, moments, strict=True):
                var = s2 / n - (s1 / n) ** 2
                # a constant output can round to a tiny negative variance: its std is 0, not NaN
                self.branches.append((name, math.sqrt(max(var, 0.0)) if math.isfinite(var) else math.nan))

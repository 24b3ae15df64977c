"""The feature probe inside training steps (the Monitor's ``features=True``): activation
checkpointing's recomputations add nothing, and a gradient-accumulation step is ranked on its
first micro-batch (docs/api.md, "Training stacks"). References: the same probe on a plain no-grad
forward of that micro-batch, and numpy float64 SVDs of the captured block inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from resdiag.api import Monitor
from resdiag.probes.features import FeatureProbe
from tests.integrations.problems import ResNetMLP, batch


def _no_grad_ranks(model: ResNetMLP, x: torch.Tensor) -> list[tuple[str, float, float]]:
    ckpt, model.ckpt = model.ckpt, None
    try:
        named = [(f"blocks.{n}", b) for n, b in model.blocks.named_children()]
        with torch.no_grad(), FeatureProbe(model, named) as probe:
            model(x)
        probe.collect()
    finally:
        model.ckpt = ckpt
    return [(name, r.erank, r.rank1_distance) for name, _, r in probe.boundaries]


def _recorded(model: ResNetMLP, micro: list[tuple[torch.Tensor, torch.Tensor]]):
    monitor = Monitor(model, every=1, features=True, blocks=r"blocks\.\d+$")
    with monitor.record(0) as rec:
        for x, y in micro:
            (nn.functional.cross_entropy(model(x), y) / len(micro)).backward()
    return [(r.name, r.erank, r.rank1_distance) for r in rec.rank.features]


def _erank(x: np.ndarray) -> float:
    """Roy & Vetterli's effective rank of the centred X (an independent numpy float64 SVD)."""
    s = np.linalg.svd(x - x.mean(0), compute_uv=False)
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


@pytest.mark.parametrize("ckpt", ["reentrant", "non_reentrant", "sequential"])
def test_checkpoint_recomputation_adds_no_feature_rows(ckpt):
    torch.manual_seed(0)
    model = ResNetMLP(width=16, depth=4, ckpt=ckpt)
    x, y = batch(12)
    got = _recorded(model, [(x, y)])
    want = _no_grad_ranks(model, x)
    assert [g[0] for g in got] == [w[0] for w in want]  # blocks.0:in .. blocks.3:in, blocks.3:out
    assert len(got) == 5
    for g, w in zip(got, want, strict=True):
        assert g[1:] == pytest.approx(w[1:], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("k", [2, 3])
def test_accumulation_step_is_ranked_on_its_first_micro_batch(k):
    torch.manual_seed(1)
    model = ResNetMLP(width=16, depth=3)
    x, y = batch(8 * k, seed=3)
    micro = list(zip(x.chunk(k), y.chunk(k), strict=True))
    got = _recorded(model, micro)
    want = _no_grad_ranks(model, micro[0][0])
    assert [g[0] for g in got] == [w[0] for w in want]
    for g, w in zip(got, want, strict=True):
        assert g[1:] == pytest.approx(w[1:], rel=1e-9, abs=1e-12)
    xs = []  # block inputs of the first micro-batch, captured by plain hooks
    handles = [b.register_forward_pre_hook(lambda m, a: xs.append(a[0].detach().double().numpy()))
               for b in model.blocks]
    with torch.no_grad():
        model(micro[0][0])
    for h in handles:
        h.remove()
    for (name, erank, _), xl in zip(got, xs, strict=False):
        assert erank == pytest.approx(_erank(xl), rel=1e-6), name


def test_blocks_that_see_other_batch_sizes_are_recorded_not_a_crash():
    """A multi-crop network: the first block sees the batch, the next ones both crops stacked."""
    from torch import nn

    from resdiag.api import Monitor

    class Block(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.lin = nn.Linear(d, d)

        def forward(self, x):
            return x + torch.relu(self.lin(x))

    class MultiCrop(nn.Module):
        def __init__(self, d=16):
            super().__init__()
            self.inp, self.stage1, self.head = nn.Linear(12, d), Block(d), nn.Linear(d, 3)
            self.stage2 = nn.Sequential(Block(d), Block(d))

        def forward(self, x):
            h = self.stage1(self.inp(x))
            h = self.stage2(torch.cat([h, h.flip(-1)], 0))
            return self.head(h[: x.shape[0]] + h[x.shape[0]:])

    torch.manual_seed(0)
    model = MultiCrop()
    monitor = Monitor(model, every=1, features=True, blocks=r"stage1|stage2\.\d")
    with monitor.record(0) as rec:
        nn.functional.cross_entropy(model(torch.randn(8, 12)), torch.zeros(8, dtype=torch.long)).backward()
    assert [f.shape[0] for f in rec.rank.features] == [8, 16, 16, 16]
    assert all(0 < f.erank_ratio <= 1 for f in rec.rank.features)

"""FeatureProbe.branches: each block's residual-branch std, named by its block, against hooks placed
by hand and numpy's population std in float64."""

import numpy as np
import pytest
import torch
from torch import nn

from resdiag.probes.features import FeatureProbe
from resdiag.probes.layers import find_blocks
from resdiag.zoo import build, resolve


def test_branch_stds_are_named_by_block_and_match_numpy():
    torch.manual_seed(0)
    model = build(resolve("resnet8", width=0.25, input_shape=(3, 8, 8))).eval()
    x = torch.randn(6, 3, 8, 8)
    seen = {}

    def keep(name):
        def hook(module, args, out):
            seen[name] = out.detach().double().numpy()
        return hook

    handles = [block.branch.register_forward_hook(keep(name)) for name, block in find_blocks(model)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    with torch.no_grad(), FeatureProbe(model) as probe:
        model(x)
        probe.collect()
    assert [name for name, _ in probe.branches] == [name for name, _ in find_blocks(model)]
    for name, std in probe.branches:
        assert std == pytest.approx(float(np.std(seen[name])), rel=1e-9)


class ZeroBranch(nn.Module):
    """A block whose residual branch outputs exactly 0 (a zero-initialised branch)."""

    def __init__(self):
        super().__init__()
        self.branch = nn.Linear(4, 4)
        nn.init.zeros_(self.branch.weight)
        nn.init.zeros_(self.branch.bias)

    def forward(self, x):
        return x + self.branch(x)


def test_a_branch_that_outputs_zero_has_std_zero_not_nan():
    model = nn.Sequential(ZeroBranch(), ZeroBranch())
    with torch.no_grad(), FeatureProbe(model, blocks=list(model.named_children())) as probe:
        model(torch.randn(5, 4))
        probe.collect()
    assert probe.branches == [("0", 0.0), ("1", 0.0)]  # numpy: np.std(zeros) == 0

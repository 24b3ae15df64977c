"""Diagnose your transformer: gradient flow and token rank of a ViT, with and without residuals.

    python examples/diagnose_transformer.py

Runs one training step of ``TinyViT`` (examples/user_models.py) and of its residual-free twin under
``resdiag.api.Monitor`` (features on), prints the gradient-flow verdict, the across-sample rank
verdict and the token-rank findings (docs/tokens.md) of each. Any model works the same way: the
Monitor finds transformer layers by name (docs/architectures.md, "Other people's models: blocks").
"""

from __future__ import annotations

import torch
from torch import nn

from examples.user_models import TinyViT
from resdiag.api import Monitor
from resdiag.diagnosis.tokens import diagnose_tokens, not_applied
from resdiag.probes.layers import NO_BLOCKS_HINT


def diagnose(model: nn.Module, name: str) -> None:
    monitor = Monitor(model, every=1, features=True)
    x, y = torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))
    with monitor.record(0) as rec:
        nn.functional.cross_entropy(model(x), y).backward()
    rec = rec.recording
    if not monitor.blocks:
        print(f"{name}: {NO_BLOCKS_HINT}")
        return
    tokens = token_ranks(model, x)  # the Monitor's results do not carry token ranks yet
    res = [t.token_res for _, _, t in tokens]
    found = diagnose_tokens(res, [t.token_erank_ratio for _, _, t in tokens], [n for n, _, _ in tokens])
    print(f"{name}: grad-flow {rec.result.verdict.status}, rank {rec.rank.verdict.status}, "
          f"token res x_0 {res[0]:.3g} -> x_L {res[-1]:.3g}, token findings: "
          f"{', '.join(f.rule for f in found) or not_applied(res, [n for n, _, _ in tokens]) or 'none'}")


def token_ranks(model: nn.Module, x: torch.Tensor):
    """Token ranks of every 3-D block boundary, from the feature probe."""
    from resdiag.probes.features import FeatureProbe

    with torch.no_grad(), FeatureProbe(model) as probe:
        model(x)
    probe.collect()
    return probe.tokens


if __name__ == "__main__":
    torch.manual_seed(0)
    diagnose(TinyViT(depth=6), "ViT-6")
    torch.manual_seed(0)
    diagnose(TinyViT(depth=6, residual=False), "ViT-6 without residuals")

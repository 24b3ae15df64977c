"""Per-layer gradient norms of the zoo transformer at initialisation, post-LN vs pre-LN.

Compare with Xiong et al. 2020, "On Layer Normalization in the Transformer Architecture" (ICML),
Fig. 3: at initialisation the post-LN gradient norm of each layer's weights grows toward the output
layers, pre-LN's stays roughly flat. Run:

    python examples/xiong_fig3.py --depths 6 12 24 48 --seeds 0 1

Prints, per placement and depth, ||dE/dW|| of the feed-forward output weight (``mlp.fc2``, the
W^2 of Xiong et al.'s Theorem 1) at the first, middle and last layer, the last/first ratio, and
the activation-gradient ratio ||dE/dx_0|| / ||dE/dx_L||, each averaged over seeds and batches.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from torch import nn

from resdiag.probes.grad import GradientProbe
from resdiag.zoo import build, resolve


def measure(depth: int, placement: str, seed: int, batches: int = 2, batch: int = 32, plain: bool = False):
    torch.manual_seed(seed)
    cfg = resolve("transformer", depth, plain=plain, placement=placement)
    model = build(cfg)
    gen = torch.Generator().manual_seed(seed)
    with GradientProbe(model) as probe:
        for _ in range(batches):
            ids = torch.randint(0, cfg.vocab_size, (batch, cfg.input_shape[0]), generator=gen)
            y = torch.randint(0, cfg.num_classes, (batch,), generator=gen)
            nn.functional.cross_entropy(model(ids), y).backward()
            probe.step()
            model.zero_grad(set_to_none=True)
    fc2 = [i for i, layer in enumerate(probe.layers) if layer.name.endswith("mlp.fc2")]
    w = [statistics.mean(s.weight_grad[i] for s in probe.steps) for i in fc2]
    b = [statistics.mean(g) for g in zip(*(s.boundary_grad for s in probe.steps), strict=True)]
    return w, b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depths", type=int, nargs="+", default=[6, 12, 24, 48])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--plain", action="store_true", help="the residual-free twins")
    args = ap.parse_args()
    print("| placement | depth | fc2 grad layer 1 | layer L/2 | layer L | last/first | dE/dx_0 / dE/dx_L |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for placement in ("postln", "preln"):
        for depth in args.depths:
            runs = [measure(depth, placement, s, plain=args.plain) for s in args.seeds]
            w = [statistics.mean(r[0][i] for r in runs) for i in range(depth)]
            ratio = statistics.mean(r[1][0] / r[1][-1] for r in runs)
            mid = w[(depth - 1) // 2]
            print(f"| {placement} | {depth} | {w[0]:.3g} | {mid:.3g} | {w[-1]:.3g} | {w[-1] / w[0]:.3g} | "
                  f"{ratio:.3g} |")


if __name__ == "__main__":
    main()

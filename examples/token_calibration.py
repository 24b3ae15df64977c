"""Token-rank numbers of intact and residual-free transformers at initialisation: the measurements
behind the thresholds of resdiag/diagnosis/tokens.py (docs/tokens.md). Run:

    python examples/token_calibration.py --depths 2 6 12 24 --seeds 0 1

For each net: token_res and token_erank_ratio (batch means, resdiag/metrics/tokens.py) at x_0 and
x_L, the retention token_erank_ratio(x_L) / token_erank_ratio(x_0), and the findings of
``diagnose_tokens`` with its default thresholds.
"""

from __future__ import annotations

import argparse

import torch

from examples.user_models import TinyViT
from resdiag.diagnosis.tokens import diagnose_tokens
from resdiag.probes.features import FeatureProbe
from resdiag.zoo import build, resolve


def nets(depth: int):
    for placement in ("preln", "postln"):
        for plain in (False, True):
            cfg = resolve("transformer", depth, plain=plain, placement=placement)
            yield cfg.name, lambda c=cfg: build(c), (cfg.input_shape[0],), True
    for residual in (True, False):
        name = f"vit{depth}{'' if residual else '_no_residual'}"
        yield name, lambda r=residual: TinyViT(depth=depth, residual=r), (3, 32, 32), False


def measure(make, shape, tokens: bool, seed: int, batch: int = 32):
    torch.manual_seed(seed)
    model = make()
    gen = torch.Generator().manual_seed(seed + 1000)
    x = torch.randint(0, 256, (batch, *shape), generator=gen) if tokens else \
        torch.randn((batch, *shape), generator=gen)
    with torch.no_grad(), FeatureProbe(model) as probe:
        model(x)
    probe.collect()
    return [(name, r) for name, _, r in probe.tokens]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depths", type=int, nargs="+", default=[2, 6, 12, 24])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = ap.parse_args()
    print("| net | seed | res x_0 | res x_L | erank ratio x_0 | erank ratio x_L | retention | findings |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for depth in args.depths:
        for name, make, shape, tokens in nets(depth):
            for seed in args.seeds:
                rows = measure(make, shape, tokens, seed)
                res = [r.token_res for _, r in rows]
                er = [r.token_erank_ratio for _, r in rows]
                found = diagnose_tokens(res, er, [n for n, _ in rows])
                print(f"| {name} | {seed} | {res[0]:.3g} | {res[-1]:.3g} | {er[0]:.3g} | {er[-1]:.3g} | "
                      f"{er[-1] / er[0]:.3g} | {', '.join(f.rule for f in found) or 'none'} |")


if __name__ == "__main__":
    main()

"""Measurements behind the default verdict thresholds (docs/calibration.md).

    python benchmarks/calibrate.py [--device cuda] [--seeds 2] [--quick] [--out FILE.md]

For plain and residual CIFAR nets (post- and pre-activation, with and without BN, depths 20 to
1202) and MLPs (depths 16 to 1024), at initialisation on synthetic data, prints the quantities the
verdict rules read: the end-to-end activation-gradient ratio ||dE/dx_0|| / ||dE/dx_L||, the fitted
growth per block, AUTOTRAINER's first/last weight-gradient ratio, the feature erank ratio at x_0
and x_L and its retention, the rank-1 distance at x_L, and the verdicts under the defaults. Each
cell is the median over seeds (the spread is printed beside it).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

import torch

from resdiag.errors import ResdiagError
from resdiag.run.gradflow import run_grad_flow
from resdiag.run.rank import run_rank
from resdiag.run.target import TargetSpec
from resdiag.zoo import resolve

CNN = [(f, n) for f in ("plain", "resnet", "preact_resnet") for n in ("batch", "none")]
MLP = [(f, n) for f in ("plain_mlp", "mlp") for n in ("none", "batch")]


def cells(quick: bool):
    cnn_depths = (20, 56) if quick else (20, 56, 110, 1202)
    mlp_depths = (16, 64) if quick else (16, 64, 256, 1024)
    for family, norm in CNN:
        for d in cnn_depths:
            yield family, d, norm
    for family, norm in MLP:
        for d in mlp_depths:
            yield family, d, norm


def med(values):
    ok = [v for v in values if math.isfinite(v)]
    if not ok:
        return math.nan, math.nan
    return statistics.median(ok), (max(ok) - min(ok)) if len(ok) > 1 else 0.0


def fmt(x: float) -> str:
    return "–" if not math.isfinite(x) else f"{x:.3g}"


def measure(family, depth, norm, seeds, device, batch_gf, batch_rank):
    cfg = resolve(family, depth, norm=norm)
    gf = [run_grad_flow(TargetSpec(arch=cfg, seed=s), batches=4, batch_size=batch_gf, device=device)
          for s in seeds]
    rk = [run_rank(TargetSpec(arch=cfg, seed=s), batch_size=batch_rank, device=device) for s in seeds]
    row = {
        "boundary_ratio": med([r.summary.boundary_ratio for r in gf]),
        "growth": med([r.summary.growth_per_block for r in gf]),
        "at_ratio": med([r.summary.weight_first_last_ratio for r in gf]),
        "erank0": med([r.summary.feature_erank_ratio_first for r in rk]),
        "erankL": med([r.summary.feature_erank_ratio_last for r in rk]),
        "retention": med([r.summary.feature_erank_retention for r in rk]),
        "rank1": med([r.summary.rank1_distance_last for r in rk]),
        "w_erank_min": med([r.summary.weight_erank_ratio_min for r in rk]),
    }
    verdicts = tuple("/".join(sorted({r.verdict.status for r in rs})) for rs in (gf, rk))
    return row, verdicts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--batch-grad", type=int, default=128)
    ap.add_argument("--batch-rank", type=int, default=256)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    seeds = list(range(args.seeds))
    head = ("| model | norm | depth | x_0/x_L grad | growth/block | AT ratio | erank x_0 | erank x_L "
            "| retention | rank-1 dist x_L | min weight erank | grad verdict | rank verdict | s |")
    lines = [
        f"device {args.device}, torch {torch.__version__}, seeds {seeds}, grad-flow 4 x {args.batch_grad}, "
        f"rank batch {args.batch_rank}; each cell: median over seeds (± range)", "", head,
        "|" + "|".join(["---"] * (head.count("|") - 1)) + "|",
    ]
    print("\n".join(lines), flush=True)
    for family, depth, norm in cells(args.quick):
        t = time.time()
        try:
            row, (gv, rv) = measure(family, depth, norm, seeds, args.device, args.batch_grad, args.batch_rank)
        except (ResdiagError, RuntimeError) as exc:  # e.g. out of memory: report, keep going
            line = f"| {family} | {norm} | {depth} | error: {str(exc).splitlines()[0][:80]} |"
        else:
            vals = " | ".join(f"{fmt(m)} ± {fmt(s)}" if s > 0 else fmt(m) for m, s in row.values())
            line = f"| {family} | {norm} | {depth} | {vals} | {gv} | {rv} | {time.time() - t:.0f} |"
        lines.append(line)
        print(line, flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())

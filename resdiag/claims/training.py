"""C3-C8: short trainings (same seeds, same budget) and the ranks of the trained networks."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from resdiag.claims.budget import Budget
from resdiag.claims.row import ClaimRow, fmt
from resdiag.zoo import parse_shortcut, resolve

# He et al. 2016, ResNet-110 on CIFAR-10, test error (%).
TABLE1 = {
    "identity": 6.61,
    "scale:0.5,0.5": 12.35,
    "gate:-6": 8.70,
    "shortcut_gate:-6": 6.91,
    "conv": 12.22,
    "dropout:0.5": None,
}  # None: "fail" (did not converge)
TABLE2 = {"post": 6.61, "bn_after_add": 8.17, "relu_before_add": 7.84, "relu_preact": 6.71, "preact": 6.37}
TAIL = 0.2  # the final loss and error are means over the last 20% of the steps


@dataclass(frozen=True)
class Trained:
    name: str
    loss: float  # mean training loss over the last TAIL of the steps
    error: float  # mean training error over the same steps
    checkpoint: Path
    curve: tuple[tuple[int, float, float], ...]  # (step, loss, error) of every step


def train(cfg, b: Budget, seed: int, out: Path, data: str = "synthetic") -> Trained:
    from resdiag.run.target import TargetSpec
    from resdiag.train import RunOptions, run_training

    stats = []
    recipe = dict(
        steps=b.steps, batch_size=b.batch_size, lr=b.lr, seed=seed, data=data, synthetic_size=b.synthetic_size
    )
    options = RunOptions(
        out=out,
        record_every=b.steps,
        checkpoint_every=b.steps,
        features=False,
        device=b.device,
        overwrite=True,
        plots=False,
    )
    run_training(TargetSpec(arch=cfg), recipe, options, on_step=stats.append)
    tail = stats[-max(1, int(len(stats) * TAIL)) :]
    return Trained(
        cfg.name,
        statistics.fmean(s.loss for s in tail),
        statistics.fmean(s.error for s in tail),
        out / "checkpoint.pt",
        tuple((s.step, s.loss, s.error) for s in stats),
    )


def _small(family: str, depth: int, b: Budget, **kw):
    return resolve(family, depth, width=b.width, input_shape=(3, b.image, b.image), **kw)


def _mean_over_seeds(make, b: Budget, out: Path, tag: str, data: str) -> dict:
    runs = [train(make(), b, s, out / f"{tag}-s{s}", data) for s in b.seeds]
    return {
        "loss": statistics.fmean(r.loss for r in runs),
        "error": statistics.fmean(r.error for r in runs),
        "checkpoints": [str(r.checkpoint) for r in runs],
        "curve": [list(c) for c in runs[0].curve],
    }


def _ranking(results: dict, paper: dict, claim_id: str, claim: str, best: str, source: str) -> ClaimRow:
    order = sorted(results, key=lambda k: results[k]["loss"])
    pos = order.index(best) + 1
    verdict = "supported" if pos == 1 else "mixed" if pos == 2 else "not supported"
    measured = "; ".join(
        f"{k}: loss {fmt(results[k]['loss'])}, err {fmt(results[k]['error'])}" for k in order
    )
    paper_txt = ", ".join(f"{k} {'fail' if v is None else v}" for k, v in paper.items())
    evidence = (
        f"ranked by final training loss, best first; {best} ranks {pos} of {len(order)}. "
        f"Paper (ResNet-110, CIFAR-10 test error %): {paper_txt}. A short budget on a fixed "
        f"synthetic set measures how fast each variant optimises, not its test error."
    )
    return ClaimRow(
        claim_id, claim, measured, verdict, evidence, {"results": results, "order": order}, source
    )


def c3(b: Budget, out: Path, data: str) -> ClaimRow:
    results = {
        sc: _mean_over_seeds(
            lambda sc=sc: _small("resnet", b.train_depth, b, shortcut=parse_shortcut(sc)),
            b,
            out,
            f"c3-{sc.replace(':', '_').replace(',', '_')}",
            data,
        )
        for sc in TABLE1
    }
    return _ranking(
        results,
        TABLE1,
        "C3",
        "identity shortcuts beat scaling, gating, 1×1-conv and dropout shortcuts",
        "identity",
        "He et al. 2016, Table 1",
    )


def c4(b: Budget, out: Path, data: str) -> ClaimRow:
    results = {
        p: _mean_over_seeds(
            lambda p=p: _small("resnet", b.train_depth, b, placement=p), b, out, f"c4-{p}", data
        )
        for p in TABLE2
    }
    return _ranking(
        results,
        TABLE2,
        "C4",
        "where the activation sits matters; full pre-activation is best",
        "preact",
        "He et al. 2016, Table 2",
    )


def c5(b: Budget, out: Path, data: str) -> tuple[ClaimRow, dict]:
    shallow, deep = b.c5_depths
    runs = {
        f"{f}{d}": _mean_over_seeds(lambda f=f, d=d: _small(f, d, b), b, out, f"c5-{f}{d}", data)
        for f in ("plain", "resnet")
        for d in (shallow, deep)
    }
    p_gap = runs[f"plain{deep}"]["error"] - runs[f"plain{shallow}"]["error"]
    r_gap = runs[f"resnet{deep}"]["error"] - runs[f"resnet{shallow}"]["error"]
    if p_gap > 0 and r_gap <= 0:
        verdict = "supported"
    elif p_gap > r_gap:
        verdict = "mixed"
    else:
        verdict = "not supported"
    measured = "; ".join(f"{k}: err {fmt(v['error'])}, loss {fmt(v['loss'])}" for k, v in runs.items())
    evidence = (
        f"training error after {b.steps} steps (mean of the last {int(TAIL * 100)}%, seeds "
        f"{list(b.seeds)}): going from {shallow} to {deep} layers changes it by {fmt(p_gap)} for plain "
        f"nets and {fmt(r_gap)} for residual nets. He et al. 2015 (Fig. 1, 6) saw plain-56 train "
        f"worse than plain-20 over 64k iterations; a short budget may show only the start of it."
    )
    return ClaimRow(
        "C5",
        "deeper plain networks train worse (degradation); deeper residual ones do not",
        measured,
        verdict,
        evidence,
        {"runs": runs},
        "He et al. 2015, Fig. 1 and 6",
    ), runs


def rank_claims(b: Budget, runs: dict) -> list[ClaimRow]:
    """C6, C7, C8 from the deep plain and residual nets of C5, at initialisation and trained."""
    from resdiag.run.rank import run_rank
    from resdiag.run.target import TargetSpec

    deep = b.c5_depths[1]
    seed = b.seeds[0]
    r = {}
    for fam in ("plain", "resnet"):
        cfg = _small(fam, deep, b)
        ck = Path(runs[f"{fam}{deep}"]["checkpoints"][0])
        # At initialisation BN normalises with batch statistics (train mode; its running statistics
        # are still 0 and 1); the trained nets run in eval mode with the statistics they learned.
        r[fam, "init"] = run_rank(
            TargetSpec(arch=cfg, seed=seed), batch_size=b.rank_batch_size, device=b.device, mode="train"
        )
        r[fam, "trained"] = run_rank(
            TargetSpec(arch=cfg, seed=seed, checkpoint=ck), batch_size=b.rank_batch_size, device=b.device
        )
    return [_c6(r, deep), _c7(r, deep), _c8(r, deep)]


def _c6(r, deep) -> ClaimRow:
    ret = {k: v.summary.feature_erank_retention for k, v in r.items()}
    last = {k: v.summary.feature_erank_ratio_last for k, v in r.items()}
    lower = [ret["plain", s] < ret["resnet", s] for s in ("init", "trained")]
    verdict = "supported" if all(lower) else "mixed" if any(lower) else "not supported"
    measured = "; ".join(
        f"{f}{deep} {s}: retention {fmt(ret[f, s])}, erank ratio x_L {fmt(last[f, s])}"
        for f in ("plain", "resnet")
        for s in ("init", "trained")
    )
    evidence = (
        "feature erank ratio at x_L over that at x_0 on the same inputs (train mode at "
        "initialisation, eval mode once trained); lower = the features lose more rank through depth."
    )
    return ClaimRow(
        "C6",
        "degradation is a decline of representation rank with depth",
        measured,
        verdict,
        evidence,
        {f"{f}-{s}": ret[f, s] for f, s in ret},
        "the seed's degradation argument",
    )


def _c7(r, deep) -> ClaimRow:
    med = {k: v.summary.weight_erank_ratio_median for k, v in r.items()}
    srank = {k: v.summary.weight_stable_rank_median for k, v in r.items()}
    drop = {f: med[f, "init"] - med[f, "trained"] for f in ("plain", "resnet")}
    # A drop smaller than 0.01 (1% of the ceiling) is within what a few steps move a random matrix.
    if drop["plain"] > 0.01 and drop["plain"] > 2 * max(drop["resnet"], 0):
        verdict = "supported"
    elif drop["plain"] > drop["resnet"]:
        verdict = "mixed"
    else:
        verdict = "not supported"
    measured = "; ".join(
        f"{f}{deep} {s}: erank ratio {fmt(med[f, s])}, stable rank {fmt(srank[f, s])}"
        for f in ("plain", "resnet")
        for s in ("init", "trained")
    )
    evidence = (
        f"median over layers of erank/min(m,n); training lowers it by {fmt(drop['plain'])} (plain) "
        f"and {fmt(drop['resnet'])} (residual)."
    )
    return ClaimRow(
        "C7",
        "weight matrices of degraded networks lose rank",
        measured,
        verdict,
        evidence,
        {
            "median_erank_ratio": {f"{f}-{s}": v for (f, s), v in med.items()},
            "median_stable_rank": {f"{f}-{s}": v for (f, s), v in srank.items()},
        },
        "the seed's degradation argument",
    )


def _c8(r, deep) -> ClaimRow:
    std = {k: _mean([f.branch_std for f in v.features]) for k, v in r.items()}
    smaller = std["resnet", "trained"] < std["plain", "trained"]
    verdict = "supported" if smaller else "not supported"
    measured = "; ".join(
        f"{f}{deep} {s}: mean std of F(x_l) {fmt(std[f, s])}"
        for f in ("plain", "resnet")
        for s in ("init", "trained")
    )
    evidence = (
        "mean over blocks of the std of each residual branch's output (for plain nets, the same "
        "layers); trained nets in eval mode, as He et al. 2015 (Fig. 7) measured them. At "
        "initialisation both end in a BN with unit scale, so both are about 1."
    )
    return ClaimRow(
        "C8",
        "residual networks have smaller layer responses",
        measured,
        verdict,
        evidence,
        {f"{f}-{s}": v for (f, s), v in std.items()},
        "He et al. 2015, Fig. 7",
    )


def _mean(values) -> float:
    ok = [v for v in values if math.isfinite(v)]
    return statistics.fmean(ok) if ok else math.nan

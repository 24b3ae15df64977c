"""C3-C5: which trained variant reaches lower error, with the seed spread in every comparison."""

from __future__ import annotations

from pathlib import Path

from resdiag.claims.budget import Budget
from resdiag.claims.row import ClaimRow
from resdiag.claims.stats import Sample, at_chance, combine, compare
from resdiag.claims.training import Data, Variant, small, train_variant
from resdiag.zoo import parse_shortcut

CLASSES = 10
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
BUDGET_NOTE = (
    "What a short budget can show: which variants are clearly worse early in training on small data "
    "(e.g. a gate or dropout on the shortcut). What it cannot show: differences of a few tenths of a "
    "percent at the end of 64k iterations of CIFAR-10 (He et al. 2016 report single numbers of that "
    "size), nor the regularising effect He et al. 2016 credit pre-activation with (their §4.1: at "
    "110/164 layers pre-activation reaches slightly higher training loss and lower test error)."
)


def ranking_verdict(errors: dict[str, Sample], best: str, floor: float, n_scored: int) -> tuple[str, str]:
    """The claimed-best variant's held-out error must be resolved lower than every other's
    (stats.combine). Inconclusive when the claimed-best net is still at chance."""
    if at_chance(errors[best], CLASSES, n_scored):
        return "inconclusive", f"{best} is still at chance accuracy"
    orders = {k: compare(errors[best], v, floor) for k, v in errors.items() if k != best}
    verdict, why = combine(orders.values(), "lower")
    detail = ", ".join(f"{best} {o} than {k}" if o in ("lower", "higher") else f"{o} with {k}"
                       for k, o in orders.items())
    return verdict, f"{why} ({detail})"


def degradation_verdict(ps: Sample, pd: Sample, rs: Sample, rd: Sample, floor: float,
                        n_scored: int) -> tuple[str, str]:
    """He et al. 2015 (Fig. 1, 6): the deeper plain net has higher *training* error than the
    shallower one; the deeper ResNet does not. Arguments: training errors of plain shallow, plain
    deep, ResNet shallow, ResNet deep, over seeds."""
    if at_chance(ps, CLASSES, n_scored) or at_chance(rs, CLASSES, n_scored):
        return "inconclusive", "a shallow net is still at chance accuracy"
    if at_chance(pd, CLASSES, n_scored):
        return "inconclusive", ("the deep plain net is still at chance: a budget too short for it to "
                                "start cannot be told from degradation")
    p, r = compare(pd, ps, floor), compare(rd, rs, floor)
    if "unknown" in (p, r):
        return "inconclusive", "not enough seeds or a number that is not finite"
    if p == "lower":
        return "not supported", "the deeper plain net trains to resolved lower error"
    if p == "tie":
        return "inconclusive", "no resolved difference between the plain nets"
    if r == "higher":
        return "mixed", "both deeper nets train to resolved higher error"
    return "supported", f"deeper plain net resolved higher; deeper ResNet {r} (not resolved higher)"


def _table(variants: dict[str, Variant]) -> str:
    return "; ".join(f"{k}: test err {v.test_error.text()}, train err {v.train_error.text()}, "
                     f"loss {v.loss.text()}" for k, v in variants.items())


def _ranking_row(cid: str, claim: str, source: str, variants: dict[str, Variant], paper: dict, best: str,
                 data: Data, b: Budget) -> ClaimRow:
    if data.test is None:
        verdict, why = "inconclusive", f"{data.name} data has no held-out split (use --data digits)"
    else:
        n = len(data.test.labels)
        verdict, why = ranking_verdict({k: v.test_error for k, v in variants.items()}, best, 1 / n, n)
    paper_txt = ", ".join(f"{k} {'fail' if v is None else v}" for k, v in paper.items())
    evidence = (
        f"Held-out test error of {data.name} (eval mode, BN statistics re-estimated on the training "
        f"split), mean ± std over seeds {list(b.seeds)}, ResNet-{b.train_depth} at width {b.width}, "
        f"{b.steps} steps. Rule: {best}'s error must be resolved lower than every other variant's "
        f"(difference > 2 standard errors and > one test image); {why}. Paper (ResNet-110, "
        f"CIFAR-10 test error %): {paper_txt}. {BUDGET_NOTE}"
    )
    numbers = {"results": {k: v.to_dict() for k, v in variants.items()}, "paper": paper}
    return ClaimRow(cid, claim, _table(variants), verdict, evidence, numbers, source)


def c3(b: Budget, out: Path, data: Data) -> ClaimRow:
    variants = {
        sc: train_variant(f"c3-{sc.replace(':', '_').replace(',', '_')}",
                          small("resnet", b.train_depth, b, shortcut=parse_shortcut(sc)), b, out, data)
        for sc in TABLE1
    }
    return _ranking_row("C3", "identity shortcuts beat scaling, gating, 1×1-conv and dropout shortcuts",
                        "He et al. 2016, Table 1", variants, TABLE1, "identity", data, b)


def c4(b: Budget, out: Path, data: Data) -> ClaimRow:
    variants = {p: train_variant(f"c4-{p}", small("resnet", b.train_depth, b, placement=p), b, out, data)
                for p in TABLE2}
    return _ranking_row("C4", "where the activation sits matters; full pre-activation is best",
                        "He et al. 2016, Table 2", variants, TABLE2, "preact", data, b)


def c5(b: Budget, out: Path, data: Data) -> tuple[ClaimRow, dict[str, Variant]]:
    shallow, deep = b.c5_depths
    runs = {f"{f}{d}": train_variant(f"c5-{f}{d}", small(f, d, b), b, out, data)
            for f in ("plain", "resnet") for d in (shallow, deep)}
    n = len(data.train.labels)
    err = {k: v.train_error for k, v in runs.items()}
    verdict, why = degradation_verdict(err[f"plain{shallow}"], err[f"plain{deep}"], err[f"resnet{shallow}"],
                                       err[f"resnet{deep}"], 1 / n, n)
    evidence = (
        f"Training error on the whole {data.name} training split ({n} images; eval mode, BN "
        f"statistics re-estimated) after {b.steps} steps, mean ± std over seeds {list(b.seeds)}, "
        f"width {b.width}. Rule: the deeper plain net's error must be resolved higher than the "
        f"shallower one's (> 2 standard errors and > one image) and the deeper ResNet's not resolved "
        f"higher; inconclusive when a net is at chance; {why}. He et al. 2015 (Fig. 1, 6): plain-56 "
        f"has higher training error than plain-20 throughout 64k iterations of CIFAR-10; ResNet-56 "
        f"lower than ResNet-20."
    )
    row = ClaimRow("C5", "deeper plain networks train worse (degradation); deeper residual ones do not",
                   _table(runs), verdict, evidence, {"runs": {k: v.to_dict() for k, v in runs.items()}},
                   "He et al. 2015, Fig. 1 and 6")
    return row, runs

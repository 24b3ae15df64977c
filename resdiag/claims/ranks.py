"""C6-C8: ranks and layer responses of the deep plain net and ResNet of C5, every seed."""

from __future__ import annotations

from resdiag.claims.budget import Budget
from resdiag.claims.evaluate import trained_model
from resdiag.claims.row import ClaimRow
from resdiag.claims.stats import Order, Sample, at_chance, combine, compare, sample
from resdiag.claims.training import Data, Variant, small
from resdiag.data import DataSpec, parse_data
from resdiag.run.inputs import InputSpec
from resdiag.run.target import TargetSpec, build_target

CLASSES = 10
FAMILIES = ("plain", "resnet")
STATES = ("init", "trained")


def chance_gate(deep: dict[str, Variant], data: Data) -> str | None:
    """Why the deep nets cannot be compared (one of them still at chance), or None."""
    split = data.test if data.test is not None else data.train
    for fam, v in deep.items():
        err = v.test_error if data.test is not None else v.train_error
        if at_chance(err, CLASSES, len(split.labels)):
            return f"the deep {fam} net is still at chance accuracy"
    return None


def paired_verdict(orders: list[Order], expected: Order, gate: str | None) -> tuple[str, str]:
    """``stats.combine`` after the chance gate: a net at chance makes the claim inconclusive."""
    if gate is not None:
        return "inconclusive", gate
    return combine(orders, expected)


def rank_claims(b: Budget, runs: dict[str, Variant], data: Data) -> list[ClaimRow]:
    from resdiag.run.rank import rank

    deep = b.c5_depths[1]
    spec = parse_data(data.name)
    held = DataSpec(spec.kind, spec.path, "test") if data.test is not None else spec
    per = {(f, s): [] for f in FAMILIES for s in STATES}
    for fam in FAMILIES:
        cfg = small(fam, deep, b)
        for seed, ck in zip(b.seeds, runs[f"{fam}{deep}"].checkpoints, strict=True):
            # At initialisation BN normalises with batch statistics (train mode); trained nets run in
            # eval mode with statistics re-estimated on the training split.
            trained = trained_model(cfg, ck, seed, data.train_for(seed), b.device)
            for state, spec, mode in (
                ("init", TargetSpec(arch=cfg, seed=seed), "train"),
                ("trained", TargetSpec(module=trained, inputs=InputSpec(shape=cfg.input_shape),
                                       num_classes=CLASSES, seed=seed), "eval"),
            ):
                per[fam, state].append(rank(build_target(spec), batch_size=min(b.rank_batch_size, _size(data)),
                                            device=b.device, data=held, mode=mode).summary)
    gate = chance_gate({f: runs[f"{f}{deep}"] for f in FAMILIES}, data)
    where = f"{held.describe()}, deep nets of C5 (depth {deep}), seeds {list(b.seeds)}"
    return [_c6(per, deep, gate, where), _c7(per, deep, gate, where), _c8(runs, deep, gate, where)]


def _size(data: Data) -> int:
    return len((data.test or data.train).labels)


def _c6(per, deep, gate, where) -> ClaimRow:
    ret = {k: sample(s.feature_erank_retention for s in v) for k, v in per.items()}
    orders = [compare(ret["plain", s], ret["resnet", s]) for s in STATES]
    verdict, why = paired_verdict(orders, "lower", gate)
    measured = "; ".join(f"{f}{deep} {s}: retention {ret[f, s].text()}" for f in FAMILIES for s in STATES)
    evidence = (f"Feature erank ratio at x_L over that at x_0 on the same inputs ({where}); lower = the "
                "features lose more rank through depth. Rule: the plain net's retention resolved lower "
                f"than the ResNet's at initialisation and once trained; {why}.")
    return ClaimRow("C6", "degradation is a decline of representation rank with depth", measured, verdict,
                    evidence, {f"{f}-{s}": v.to_dict() for (f, s), v in ret.items()},
                    "the seed's degradation argument")


def _c7(per, deep, gate, where) -> ClaimRow:
    med = {k: [s.weight_erank_ratio_median for s in v] for k, v in per.items()}
    drop = {f: sample(a - t for a, t in zip(med[f, "init"], med[f, "trained"], strict=True))
            for f in FAMILIES}
    verdict, why = paired_verdict([compare(drop["plain"], drop["resnet"])], "higher", gate)
    measured = "; ".join(f"{f}{deep}: median weight erank ratio {sample(med[f, 'init']).text()} at init, "
                         f"{sample(med[f, 'trained']).text()} trained (drop {drop[f].text()})" for f in FAMILIES)
    evidence = (f"Median over layers of erank/min(m,n) of the weight matrices, at initialisation and "
                f"trained, same seed ({where}). Rule: the plain net's drop resolved larger than the "
                f"ResNet's; the bar is the seed spread (2 standard errors), no fixed threshold; {why}.")
    return ClaimRow("C7", "weight matrices of degraded networks lose rank", measured, verdict, evidence,
                    {"drop": {f: v.to_dict() for f, v in drop.items()},
                     "median_erank_ratio": {f"{f}-{s}": v for (f, s), v in med.items()}},
                    "the seed's degradation argument")


def _c8(runs, deep, gate, where) -> ClaimRow:
    resp: dict[str, Sample] = {f: runs[f"{f}{deep}"].responses for f in FAMILIES}
    verdict, why = paired_verdict([compare(resp["resnet"], resp["plain"])], "lower", gate)
    measured = "; ".join(f"{f}{deep}: mean std of BN outputs {resp[f].text()}" for f in FAMILIES)
    evidence = (f"Std of the output of every BatchNorm in every residual block (the plain twin: the "
                f"same layers), over the held-out split, trained nets in eval mode with BN statistics "
                f"re-estimated on the training split, averaged over layers ({where}); He et al. 2015 "
                f"(Fig. 7) measured 'the outputs of each 3×3 layer, after BN and before other "
                f"nonlinearity'. Rule: the ResNet's resolved smaller; {why}.")
    return ClaimRow("C8", "residual networks have smaller layer responses", measured, verdict, evidence,
                    {f: v.to_dict() for f, v in resp.items()}, "He et al. 2015, Fig. 7")

"""Run every claim and write the report: claims.md (with the plots), claims.json, c1.png ... c5.png."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import resdiag
from resdiag.claims.budget import Budget
from resdiag.claims.gradients import c1, c2
from resdiag.claims.ranks import rank_claims
from resdiag.claims.row import ClaimRow, fmt
from resdiag.claims.trained import c3, c4, c5
from resdiag.claims.training import load_data
from resdiag.report.plot import _figure, save
from resdiag.results import atomic_write, dumps, encode


def run_claims(
    b: Budget, out: Path, data: str = "synthetic", progress: Callable[[str], None] = lambda s: None
) -> tuple[list[ClaimRow], float]:
    """All eight rows, in order; training runs go to ``out/runs``. Returns (rows, seconds)."""
    import torch

    start = time.perf_counter()
    threads = torch.get_num_threads()
    if b.threads:
        torch.set_num_threads(b.threads)
    try:
        runs = out / "runs"
        sets = load_data(data, b)
        rows = []
        for label, fn in (
            ("C1", lambda: [c1(b)]),
            ("C2", lambda: [c2(b)]),
            ("C3", lambda: [c3(b, runs, sets)]),
            ("C4", lambda: [c4(b, runs, sets)]),
            ("C5-C8", lambda: _c5_to_c8(b, runs, sets)),
        ):
            progress(label)
            t = time.perf_counter()
            new = fn()
            rows += [replace(r, seconds=time.perf_counter() - t) for r in new]
    finally:
        torch.set_num_threads(threads)
    return rows, time.perf_counter() - start


def _c5_to_c8(b: Budget, runs: Path, sets) -> list[ClaimRow]:
    row, trained = c5(b, runs, sets)
    return [row, *rank_claims(b, trained, sets)]


def write_report(rows: list[ClaimRow], b: Budget, out: Path, seconds: float, command: str,
                 data: str = "synthetic") -> list[Path]:
    from resdiag.data import default_data

    plots = _plots(rows, out)
    payload = {
        "schema": "resdiag.claims",
        "schema_version": 2,
        "budget": asdict(b),
        "data": data,
        "seconds": seconds,
        "command": command,
        "rows": [asdict(r) for r in rows],
    }
    atomic_write(out / "claims.json", dumps(encode(payload)))
    lines = [
        "# The ResNet argument, claim by claim",
        "",
        f"Produced by `{command}` (resdiag {resdiag.__version__}, budget `{b.name}`, "
        f"{seconds:.0f} s). Every number below comes from that run; `claims.json` holds them all.",
        "",
        f"Data of the trainings (C3-C8): `{data}`"
        + (" (the default, because scikit-learn imports)" if data == default_data() == "digits" else "")
        + f"; seeds {list(b.seeds)} for every claim; numbers are mean ± std over the seeds.",
        "",
        "| id | claim | measured | verdict |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r.id} | {r.claim} | {r.measured} | **{r.verdict}** |" for r in rows]
    lines.append("")
    for r in rows:
        took = f"; {r.seconds:.0f} s" + (" for C5-C8 together" if r.id in ("C5", "C6", "C7", "C8") else "")
        lines += [f"## {r.id}: {r.claim}", "", f"**{r.verdict}** ({r.source}{took if math.isfinite(r.seconds) else ''}). "
                  f"{r.evidence}", ""]
        png = out / f"{r.id.lower()}.png"
        if png in plots:
            lines += [f"![{r.id}]({png.name})", ""]
    atomic_write(out / "claims.md", "\n".join(lines))
    return [out / "claims.md", out / "claims.json", *plots]


def _plots(rows: list[ClaimRow], out: Path) -> list[Path]:
    by_id = {r.id: r for r in rows}
    written = []
    plt = _figure()
    if "C1" in by_id:
        fig, ax = plt.subplots(figsize=(6, 4))
        cells = by_id["C1"].numbers["cells"]
        for fam in ("plain", "resnet"):
            for norm in ("batch", "none"):
                pts = sorted(
                    (int(k.rsplit("-", 1)[1]), v["ratio"]["mean"])
                    for k, v in cells.items()
                    if k.startswith(f"{fam}-{norm}-")
                )
                ax.plot([d for d, _ in pts], [_pos(v) for _, v in pts], marker="o", label=f"{fam} ({norm})")
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="depth",
            ylabel="||dE/dx_0|| / ||dE/dx_L||",
            title="C1: gradient ratio at initialisation (mean over seeds)",
        )
        written.append(_save(fig, ax, out / "c1.png", plt))
    if "C2" in by_id:
        fig, ax = plt.subplots(figsize=(6, 4))
        nums = by_id["C2"].numbers
        logs = [v["log_lambda"] for v in nums.values()]
        ax.plot(logs, logs, "k:", label="ln λ (∏λ)")
        ax.plot(logs, [v["predicted"] for v in nums.values()], "k--", label="½·ln(λ² + g²)")
        for key, label in (
            ("mlp_default_branch", "residual MLP, default branch g"),
            ("mlp_small_branch", "residual MLP, branch gain 0.01"),
            ("resnet_bn", "CIFAR ResNet with BN"),
        ):
            ax.errorbar(logs, [v[key]["mean"] for v in nums.values()],
                        yerr=[_zero(v[key]["spread"]) for v in nums.values()], marker="o", label=label)
        ax.set(xlabel="ln λ", ylabel="fitted slope of ln ||dE/dx_l|| per block", title="C2: λ per block")
        written.append(_save(fig, ax, out / "c2.png", plt))
    for cid in ("C3", "C4", "C5"):
        if cid not in by_id:
            continue
        results = by_id[cid].numbers.get("results") or by_id[cid].numbers.get("runs")
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, v in results.items():
            curve = v.get("curve") or []
            ax.plot([c[0] for c in curve], [c[2] for c in curve], label=name)
        ax.set(xlabel="step", ylabel="training error of the batch",
               title=f"{cid}: training error of each step's batch (first seed)")
        written.append(_save(fig, ax, out / f"{cid.lower()}.png", plt))
    return written


def _save(fig, ax, path: Path, plt) -> Path:
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save(fig, path)
    plt.close(fig)
    return path


def _zero(v: float) -> float:
    return v if math.isfinite(v) else 0.0


def _pos(v: float) -> float:
    return v if math.isfinite(v) and v > 0 else math.nan


__all__ = ["fmt", "run_claims", "write_report"]

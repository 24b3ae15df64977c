"""Table and plots of a sweep's summary rows (``resdiag.sweep.run.summarise``)."""

from __future__ import annotations

import math
from pathlib import Path

from resdiag.metrics.registry import METRICS
from resdiag.report.fit import Column, FitTable
from resdiag.report.plot import _figure, save
from resdiag.report.table import fmt

# The columns shown, by metric name; labels and docs come from the registry.
SHOWN = ("boundary_ratio", "growth_per_block", "feature_erank_retention", "rank1_distance_last")
COLUMNS = tuple((name, METRICS[name].label) for name in SHOWN)


def sweep_table(rows: list[dict]) -> FitTable:
    """One row per variant and depth; readable at any width (resdiag.report.fit)."""
    present = [(k, label) for k, label in COLUMNS if any(k in r for r in rows)]
    t = FitTable("sweep: median over seeds [min, max]",
                 [Column("variant", "left"), Column("depth"), Column("seeds", drop=1),
                  *(Column(label) for _, label in present), Column("verdicts", "left")])
    for r in rows:
        cells = [f"{fmt(r[k])} [{fmt(r[k + '_min'])}, {fmt(r[k + '_max'])}]" if k in r else ""
                 for k, _ in present]
        t.add_row(r["variant"], str(r["depth"]), str(r["seeds"]), *cells, ", ".join(r["verdicts"]))
    return t


def plot_sweep(rows: list[dict], out: Path) -> list[Path]:
    """grad_ratio.png and feature_erank.png: each metric against depth, one line per variant,
    the band spanning the seeds' min and max. Returns the files written."""
    written = []
    for key, label, name, log in (
        ("boundary_ratio", METRICS["boundary_ratio"].doc, "grad_ratio.png", True),
        ("feature_erank_retention", METRICS["feature_erank_retention"].doc, "feature_erank.png", False),
    ):
        if not any(key in r for r in rows):
            continue
        plt = _figure()
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for variant in sorted({r["variant"] for r in rows}):
            rs = sorted((r for r in rows if r["variant"] == variant and key in r), key=lambda r: r["depth"])
            depths = [r["depth"] for r in rs]
            mid = [_ok(r[key], log) for r in rs]
            (line,) = ax.plot(depths, mid, marker="o", label=variant)
            ax.fill_between(depths, [_ok(r[f"{key}_min"], log) for r in rs],
                            [_ok(r[f"{key}_max"], log) for r in rs], color=line.get_color(), alpha=0.2)
        ax.set(xscale="log", xlabel="depth (layers)", ylabel=label, title=f"{label} against depth")
        if log:
            ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        save(fig, out / name)
        plt.close(fig)
        written.append(out / name)
    return written


def _ok(v: float, log: bool) -> float:
    return v if math.isfinite(v) and (v > 0 or not log) else math.nan

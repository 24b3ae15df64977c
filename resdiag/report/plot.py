"""Matplotlib figures, written atomically (PNG, SVG or PDF by the file's suffix)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

from resdiag.results import GradFlowResult
from resdiag.writes import write

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# What would make identical runs write different files: SVG's creation date and its random ids
# (clip paths, hatches: ``svg.hashsalt`` fixes their seed), PDF's creation date.
_METADATA = {"svg": {"Date": None}, "pdf": {"CreationDate": None}, "png": {"Software": None}}


def save(fig, path: Path) -> None:
    """Write ``fig`` to ``path`` atomically (with the other outputs of its group, ``resdiag.writes``);
    identical figures give byte-identical files."""
    import matplotlib

    buf = io.BytesIO()
    fmt = FORMATS[Path(path).suffix.lower()]
    with matplotlib.rc_context({"svg.hashsalt": "resdiag"}):
        fig.savefig(buf, format=fmt, dpi=120, bbox_inches="tight", metadata=_METADATA[fmt])
    write(Path(path), buf.getvalue())


def _positive(values: Sequence[float]) -> list[float]:
    return [v if math.isfinite(v) and v > 0 else math.nan for v in values]


def plot_grad_flow(results: Sequence[GradFlowResult], path: Path) -> None:
    """Log-scale ||dE/dx_l|| against l (left) and ||dE/dW|| per layer (right), one line per model."""
    plt = _figure()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for r in results:
        label = f"{r.model.name} ({r.verdict.status})"
        ax1.plot([b.index for b in r.boundaries], _positive([b.grad_norm for b in r.boundaries]),
                 marker=".", label=label)
        ax2.plot([x.index for x in r.layers], _positive([x.grad_norm for x in r.layers]),
                 marker=".", label=label)
    ax1.set(yscale="log", xlabel="block boundary l (0 = input side)", ylabel="||dE/dx_l||",
            title="activation gradient per block boundary")
    ax2.set(yscale="log", xlabel="conv/linear layer (input side first)", ylabel="||dE/dW||",
            title="weight gradient per layer")
    for ax in (ax1, ax2):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, path)
    plt.close(fig)


def plot_rank(results, path: Path) -> None:
    """Feature erank ratio and rank-1 distance against l (left); weight erank ratio and stable
    rank per layer (right); one line per model."""
    plt = _figure()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax2b = ax2.twinx()
    for r in results:
        label = f"{r.model.name} ({r.verdict.status})"
        idx = [f.index for f in r.features]
        (line,) = ax1.plot(idx, [f.erank_ratio for f in r.features], marker=".", label=f"{label} erank ratio")
        ax1.plot(idx, [f.rank1_distance for f in r.features], ls="--", color=line.get_color(),
                 label=f"{r.model.name} rank-1 distance")
        widx = [w.index for w in r.weights]
        (line,) = ax2.plot(widx, [w.erank_ratio for w in r.weights], marker=".", label=f"{label} erank ratio")
        ax2b.plot(widx, [w.stable_rank for w in r.weights], ls="--", color=line.get_color(),
                  label=f"{r.model.name} stable rank")
    ax1.set(xlabel="block boundary l (0 = input side)", ylabel="erank / ceiling; rank-1 distance (dashed)",
            title="features x_l", ylim=(0, 1.05))
    ax2.set(xlabel="conv/linear layer (input side first)", ylabel="erank / min(m, n)",
            title="weight matrices", ylim=(0, 1.05))
    ax2b.set_ylabel("stable rank (dashed)")
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    save(fig, path)
    plt.close(fig)

"""The figures of a training run, drawn from its JSON lines (the file is the one source).

- ``loss.png``: loss and training error per step, with the learning rate.
- ``gradflow.png``: ||dE/dx_l|| against l and ||dE/dW|| per layer at every recorded step,
  coloured by step, so the change of the gradient profile over training is one picture.
- ``rank.png``: feature erank ratio per block boundary and weight erank ratio per layer at every
  recorded step (only when features were recorded).
"""

from __future__ import annotations

import math
from pathlib import Path

from resdiag.report.plot import _figure, save

BOUNDARY = "block boundary l (0 = input side)"
LAYER = "conv/linear layer (input side first)"


def plot_run(lines: list[dict], out: Path) -> list[Path]:
    """Draw every figure the lines allow into ``out``; return the files written."""
    written = []
    steps = [x for x in lines if x["type"] == "step"]
    probes = [x for x in lines if x["type"] == "probe"]
    if steps:
        written.append(plot_loss(steps, out / "loss.png"))
    if probes:
        written.append(plot_profiles(
            probes, out / "gradflow.png", lambda p: p["grad_flow"],
            ("boundaries", "grad_norm", BOUNDARY, "||dE/dx_l||", "activation gradient per boundary", True),
            ("layers", "grad_norm", LAYER, "||dE/dW||", "weight gradient per layer", True)))
    ranked = [p for p in probes if p.get("rank")]
    if ranked:
        written.append(plot_profiles(
            ranked, out / "rank.png", lambda p: p["rank"],
            ("features", "erank_ratio", BOUNDARY, "erank / ceiling", "feature erank ratio per block boundary",
             False),
            ("weights", "erank_ratio", LAYER, "erank / min(m, n)", "weight erank ratio per layer", False)))
    return written


def _num(v) -> float:
    """A JSON number, or one of the strings "NaN", "Infinity", "-Infinity" (docs/schema.md)."""
    return math.nan if v is None else float(v)


def plot_loss(steps: list[dict], path: Path) -> Path:
    plt = _figure()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    x = [s["step"] for s in steps]
    ax1.plot(x, [_num(s["loss"]) for s in steps], lw=1, label="loss")
    ax1.set(xlabel="step", ylabel="cross-entropy loss", title="training loss")
    lr = ax1.twinx()
    lr.plot(x, [s["lr"] for s in steps], color="grey", ls="--", lw=1, drawstyle="steps-post")
    lr.set(yscale="log", ylabel="learning rate (dashed)")
    ax2.plot(x, [100 * _num(s["error"]) for s in steps], lw=1, color="tab:red")
    ax2.set(xlabel="step", ylabel="training error (%)", title="training error (mini-batch)", ylim=(0, 100))
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
    save(fig, path)
    plt.close(fig)
    return path


def plot_profiles(probes: list[dict], path: Path, result, left: tuple, right: tuple) -> Path:
    """Two panels of per-index profiles, one line per recorded step, colour = step.
    ``left``/``right``: (rows key, value key, x label, y label, title, log scale)."""
    plt = _figure()
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    fig, axes = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
    first, last = probes[0]["step"], probes[-1]["step"]
    norm = Normalize(first, max(last, first + 1))
    cmap = plt.get_cmap("viridis")
    for ax, (rows, key, xlabel, ylabel, title, log) in zip(axes, (left, right), strict=True):
        for p in probes:
            data = result(p)[rows]
            ys = [_num(r[key]) for r in data]
            if log:
                ys = [y if math.isfinite(y) and y > 0 else math.nan for y in ys]
            ax.plot([r["index"] for r in data], ys, marker=".", ms=3, lw=1, color=cmap(norm(p["step"])))
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
        if log:
            ax.set_yscale("log")
        else:
            ax.set_ylim(0, 1.05)
        ax.grid(True, which="both", alpha=0.3)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=list(axes), label="step")
    save(fig, path)
    plt.close(fig)
    return path

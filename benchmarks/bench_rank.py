"""Time weight_spectra on stand-in weights shaped like CIFAR ResNet-1202 and ResNet-110.

Run: python benchmarks/bench_rank.py [--repeats 5]
The weights are random (Kaiming-normal scale), with the shapes of He et al. 2016's CIFAR ResNets:
a 16x3x3x3 stem conv, 3 stages of n basic blocks (two 3x3 convs each, 16/32/64 channels; the
first conv of stages 2 and 3 takes half as many input channels), and a 10x64 linear head.
If weightwatcher is importable, also times WeightWatcher(model).analyze() on the ResNet-110
stand-in as an nn.Module and prints the two side by side. Self-contained: imports nothing of
resdiag but resdiag.metrics.rank.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from resdiag.metrics.rank import weight_spectra


def cifar_resnet_convs(blocks_per_stage: int) -> list[nn.Module]:
    """The weight-bearing layers of a CIFAR ResNet-(6n+2), in forward order (no BN, no shortcut)."""
    layers: list[nn.Module] = [nn.Conv2d(3, 16, 3, padding=1, bias=False)]
    in_ch = 16
    for width in (16, 32, 64):
        for _ in range(blocks_per_stage):
            layers.append(nn.Conv2d(in_ch, width, 3, padding=1, bias=False))
            layers.append(nn.Conv2d(width, width, 3, padding=1, bias=False))
            in_ch = width
    layers.append(nn.Linear(64, 10))
    return layers


def median_seconds(fn: Callable[[], object], repeats: int, warmup: bool = True) -> float:
    """Median wall time of `repeats` calls, after one untimed warm-up call if `warmup`."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_watcher(layers: list[nn.Module], repeats: int) -> float:
    """Median time of WeightWatcher(model).analyze() with its defaults (pooled conv slices).

    That includes its power-law fit per layer, which our spectra do not do.
    """
    import logging

    import weightwatcher

    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    model = nn.Sequential(*layers)
    analyze = weightwatcher.WeightWatcher(model=model).analyze
    return median_seconds(analyze, repeats, warmup=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    nets = {"resnet1202": cifar_resnet_convs(200), "resnet110": cifar_resnet_convs(18)}
    ours: dict[tuple[str, str], float] = {}
    for name, layers in nets.items():
        weights = [layer.weight.detach() for layer in layers]
        for conv in ("flat", "slices"):
            t = median_seconds(lambda w=weights, c=conv: weight_spectra(w, conv=c), args.repeats)
            ours[name, conv] = t
            print(f"{name} weight spectra (conv={conv}): {t:.2f} s for {len(weights)} matrices")
    if importlib.util.find_spec("weightwatcher") is None:
        print("weightwatcher not installed: no comparison")
        return
    ww = time_watcher(nets["resnet110"], max(1, args.repeats // 2))
    slices = ours["resnet110", "slices"]
    print(f"resnet110 WeightWatcher.analyze(): {ww:.2f} s for {len(nets['resnet110'])} matrices")
    print(f"resnet110 weight_spectra(conv=slices): {slices:.2f} s, {ww / slices:.0f}x faster")


if __name__ == "__main__":
    main()

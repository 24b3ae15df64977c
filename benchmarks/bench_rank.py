"""Weight-spectrum speed on resdiag's own CIFAR ResNets, and the comparison with WeightWatcher.

    python benchmarks/bench_rank.py [--repeats 5]

Prints the median time of resdiag's weight-spectrum pass (`weight_spectra` over every conv/linear
layer, as `resdiag rank` runs it) on ResNet-1202 (target < 0.5 s on 2 cores) and ResNet-110, for both
conv conventions. If `weightwatcher` is importable (it is not a dependency), also times
`WeightWatcher(model=resnet110).analyze()` side by side (target: resdiag >= 20x faster; WeightWatcher
also fits power laws, which resdiag does not) and checks that `--conv slices` stable ranks agree with
WeightWatcher's `stable_rank` column to 1e-3 relative.

"gram eigenvalues": the eigenvalues of A^T A for GPT-2-small's 50 weight matrices (random, float64),
the way resdiag takes them on a CPU (numpy: a BLAS syrk per matrix, then LAPACK syevd with the
matrices of a shape split over the worker threads, BLAS on one thread each) against torch's batched
matmul and eigvalsh, interleaved, and the largest difference between the two. Then ResNet-18's
weight spectra with the eigenvalue work of all its 12 shapes spread over the workers together (what
`weight_spectra` does) against one shape at a time, interleaved.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import statistics
import time
from collections.abc import Callable

import torch

from resdiag.metrics.eigen import gram_eigenvalues
from resdiag.metrics.rank import weight_spectra
from resdiag.probes.layers import find_layers
from resdiag.zoo import build, resolve


def median_seconds(fn: Callable[[], object], repeats: int, warmup: bool = True) -> float:
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def weights_of(model) -> list[torch.Tensor]:
    return [layer.weight.detach() for layer in find_layers(model)]


def compare_watcher(model, ours: dict[str, float], repeats: int) -> None:
    """``ours``: resdiag's times, measured before WeightWatcher ran (its SciPy/OpenBLAS threads keep
    spinning after analyze() and slow whatever runs next on a 2-core machine)."""
    import weightwatcher

    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    ws = weights_of(model)
    holder = {}

    def analyze():
        holder["df"] = weightwatcher.WeightWatcher(model=model).analyze()

    ww = median_seconds(analyze, max(1, repeats // 2), warmup=False)
    for conv, t in ours.items():
        print(f"resnet110 resdiag weight spectra (conv={conv}) {t:.3f} s   WeightWatcher.analyze() "
              f"{ww:.3f} s   resdiag is {ww / t:.0f}x faster  (target >= 20x)")
    df = holder["df"]
    ours_sr = {layer.name: sp.stable_rank for layer, sp in
               zip(find_layers(model), weight_spectra(ws, conv="slices"), strict=True)}
    rel = []
    for name, sr in zip(df["longname"], df["stable_rank"], strict=True):
        if name in ours_sr:
            rel.append(abs(ours_sr[name] - sr) / abs(sr))
    print(f"stable rank, --conv slices vs WeightWatcher: {len(rel)} layers compared, "
          f"max relative difference {max(rel):.2e}  (target <= 1e-3)")


GPT2_SHAPES = {(768, 2304): 12, (768, 768): 12, (768, 3072): 12, (3072, 768): 12, (50257, 768): 1,
               (1024, 768): 1}  # HF Conv1D c_attn, attn/mlp c_proj, c_fc (in x out); wte, wpe


def compare_gram(repeats: int) -> None:
    gen = torch.Generator().manual_seed(0)
    # one batch per shape, as weight_spectra groups them
    mats = [torch.randn(k, max(m, n), min(m, n), generator=gen, dtype=torch.float64)
            for (m, n), k in GPT2_SHAPES.items()]

    def with_torch():
        return [torch.linalg.eigvalsh(a.mT @ a).flip(-1) for a in mats]

    def with_numpy():
        return [gram_eigenvalues(a) for a in mats]

    times = {"torch": [], "numpy": []}
    for _ in range(repeats):
        for name, fn in (("torch", with_torch), ("numpy", with_numpy)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    t, n = statistics.median(times["torch"]), statistics.median(times["numpy"])
    diff = max(float(((x - y).abs() / y.abs().amax(-1, keepdim=True)).max())
               for x, y in zip(with_numpy(), with_torch(), strict=True))
    print(f"gram eigenvalues, GPT-2-small's {sum(len(a) for a in mats)} matrices: torch {t:.2f} s, "
          f"resdiag (numpy) {n:.2f} s, "
          f"{t / n:.2f}x; largest difference {diff:.1e} of the largest eigenvalue")


def compare_grouping(repeats: int) -> None:
    """ResNet-18's weight spectra (21 weights in 12 shapes) with the shapes' eigenvalue work spread
    over the workers together, as weight_spectra does, against one shape at a time, interleaved."""
    import resdiag.metrics.rank as rank_module
    from bench_monitor import resnet18

    ws = weights_of(resnet18())
    together = rank_module._GROUPED_ENTRIES
    times: dict[str, list[float]] = {"together": [], "one shape at a time": []}
    weight_spectra(ws)
    for _ in range(repeats):
        for name, bound in (("together", together), ("one shape at a time", 0)):
            rank_module._GROUPED_ENTRIES = bound
            start = time.perf_counter()
            weight_spectra(ws)
            times[name].append(time.perf_counter() - start)
    rank_module._GROUPED_ENTRIES = together
    t, a = statistics.median(times["together"]), statistics.median(times["one shape at a time"])
    print(f"ResNet-18 weight spectra, {len(ws)} weights: shapes together {t:.3f} s, one shape at a "
          f"time {a:.3f} s, {a / t:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    compare_gram(max(1, args.repeats // 2))
    compare_grouping(args.repeats * 2)
    models = {name: build(resolve(name)) for name in ("resnet1202", "resnet110")}
    times = {}
    for name, model in models.items():
        ws = weights_of(model)
        for conv in ("flat", "slices"):
            run = lambda w=ws, c=conv: weight_spectra(w, conv=c)  # noqa: E731
            t = times[name, conv] = median_seconds(run, args.repeats)
            target = "  (target < 0.5 s)" if name == "resnet1202" and conv == "flat" else ""
            print(f"{name} weight spectra (conv={conv}): {t:.3f} s for {len(ws)} matrices{target}")
    if importlib.util.find_spec("weightwatcher") is None:
        print("weightwatcher not installed (pip install weightwatcher): no comparison")
        return
    compare_watcher(models["resnet110"], {c: times["resnet110", c] for c in ("flat", "slices")}, args.repeats)


if __name__ == "__main__":
    main()

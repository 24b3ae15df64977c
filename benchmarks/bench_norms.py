"""Cost and accuracy of the gradient-norm reductions resdiag could use, on this machine's device.

    python benchmarks/bench_norms.py [--numel N] [--repeats R] [--device cpu|cuda]

For one float32 tensor of N standard-normal entries (default 3.8e7, the size of GPT-2's token
embedding), interleaved, median of R: torch's float32 ``vector_norm`` (the reference time), the
float64-accumulated ``torch._foreach_norm(..., dtype=float64)``, numpy's
``einsum('i,i->', x, x, dtype=float64)``, resdiag's two chunked CPU paths over its worker threads
(exact float64 conversion + ddot with BLAS on one thread; einsum where BLAS cannot be held), and
resdiag's ``l2_norm``. Prints each one's
time as a ratio to the float32 norm, and its relative error against an exact float64 reference
(float64 copy, float64 dot). Why resdiag takes the norm it takes: resdiag/metrics/norms.py.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import torch

from resdiag.metrics import norms
from resdiag.metrics.norms import l2_norm
from resdiag.metrics.threads import map_threads, one_blas_thread


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--numel", type=int, default=38_000_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.numel, generator=g).to(args.device)
    d = x.double()
    exact = float(torch.dot(d, d).sqrt())
    del d
    ways = {"float32 vector_norm": lambda: torch.linalg.vector_norm(x),
            "foreach_norm float64": lambda: torch._foreach_norm([x], 2, dtype=torch.float64)[0],
            "resdiag l2_norm": lambda: l2_norm(x)}
    if x.device.type == "cpu":
        a = x.numpy()
        ways["numpy einsum float64"] = lambda: torch.tensor(
            np.sqrt(np.einsum("i,i->", a, a, dtype=np.float64)))
        # what l2_norm runs when threadpoolctl can hold BLAS to one thread, and what it runs when
        # it cannot, both over resdiag's worker threads (resdiag/metrics/norms.py)
        for label, path in (("chunks, ddot", norms._sum_of_squares_dot),
                            ("chunks, einsum", norms._sum_of_squares_einsum)):
            def chunked(path=path):
                chunks = [a[s:s + norms._CHUNK] for s in range(0, a.size, norms._CHUNK)]
                with one_blas_thread():
                    return torch.tensor(math.sqrt(sum(map_threads(path, chunks))), dtype=torch.float64)
            ways[label] = chunked
    times: dict[str, list[float]] = {k: [] for k in ways}
    for _ in range(args.repeats + 1):  # the first round warms up
        for name, f in ways.items():
            if x.device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            float(f())
            times[name].append(time.perf_counter() - t)
    base = statistics.median(times["float32 vector_norm"][1:])
    print(f"torch {torch.__version__}, {args.device}, {torch.get_num_threads()} threads, "
          f"{args.numel:.2e} entries, median of {args.repeats}, interleaved")
    for name, f in ways.items():
        err = abs(float(f()) - exact) / exact
        print(f"{name:22} {statistics.median(times[name][1:]) / base:6.2f}x   relative error {err:.1e}")


if __name__ == "__main__":
    main()

"""The host time a recorded block boundary costs, measured side by side in one run.

    python benchmarks/bench_boundaries.py [--blocks 55] [--repeats 600]

A chain of tiny residual blocks (Linear 8x8 and a ReLU, batch 2) on one CPU thread: a step that is
almost all host time, as a small step on a fast GPU is. Interleaved, median of R: the bare step;
the step recorded by ``GradientProbe`` with a tensor hook per boundary around ``loss.backward()``
(as a caller's own loop, and grad-flow before it ran its own backward); and as ``grad-flow`` runs it
(``own_backward``: one ``torch.autograd.grad`` call, no Python inside the backward pass). Prints
each as a ratio to the bare step and as microseconds per block. The probe's context is entered
outside the timed region (grad-flow enters it once per run). On a CPU the float64 norms of the
small tensors take much of what remains (on a GPU they are one fused kernel).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from resdiag.probes.grad import GradientProbe


class Block(nn.Module):
    resdiag_block = True

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return x + torch.relu(self.fc(x))


class Chain(nn.Module):
    def __init__(self, blocks: int):
        super().__init__()
        self.stem, self.head = nn.Linear(8, 8), nn.Linear(8, 4)
        self.blocks = nn.ModuleList(Block() for _ in range(blocks))

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=55)  # ResNet-110's number of boundaries
    ap.add_argument("--repeats", type=int, default=600)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model, x, y = Chain(args.blocks), torch.randn(2, 8), torch.tensor([0, 1])

    def run(probe: GradientProbe | None = None) -> None:
        for p in model.parameters():
            p.grad = None
        loss = nn.functional.cross_entropy(model(x), y)
        probe.backward(loss) if probe is not None and probe.own_backward else loss.backward()
        if probe is not None:
            probe.step()
            probe.steps.clear()

    probes = {"tensor hooks, loss.backward()": GradientProbe(model, weights_from="grad"),
              "grad-flow (own backward)": GradientProbe(model, weights_from="grad", own_backward=True)}
    times: dict[str, list[float]] = {"bare": []} | {name: [] for name in probes}
    for probe in probes.values():  # warm up; grad-flow's probe looks for a reentrant checkpoint once
        with probe:
            run(probe)
    for _ in range(args.repeats):
        t = time.perf_counter()
        run()
        times["bare"].append(time.perf_counter() - t)
        for name, probe in probes.items():
            with probe:
                t = time.perf_counter()
                run(probe)
                times[name].append(time.perf_counter() - t)
    bare = statistics.median(times["bare"])
    print(f"{args.blocks} blocks, torch {torch.__version__}, one thread, median of {args.repeats}: "
          f"bare step {bare * 1e3:.2f} ms")
    for name in probes:
        m = statistics.median(times[name])
        print(f"{name:32s} {m / bare:6.3f}x   {(m - bare) / args.blocks * 1e6:6.1f} us per block")


if __name__ == "__main__":
    main()

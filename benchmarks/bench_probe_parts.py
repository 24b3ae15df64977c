"""Where the gradient probe's overhead goes, part by part, measured side by side in one run.

    python benchmarks/bench_probe_parts.py [--device auto] [--arch resnet110] [--batch-size 128]

Interleaved with a bare forward+backward (median of R), the step recorded by ``GradientProbe``
as grad-flow runs it (its own backward: one autograd call, no hook inside the backward pass); the
same probe with hooks around ``loss.backward()`` (as a caller's own loop runs it), and with parts of
that switched off by replacing one method at a time: boundary pre-hooks that return at once (the
cost of the hooks' Python alone); boundary gradients hooked but not reduced; and grad-flow's path
with every norm in float32 instead of float64-accumulated. Prints each as a ratio to
the bare step.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import resdiag.probes.grad as grad_mod
from resdiag.probes.grad import GradientProbe
from bench_probe import arch_problem
from resdiag.run.common import sync


def variants():
    """name -> (methods replaced, whether the probe runs its own backward as grad-flow does)."""
    def no_boundary(self, tensor, label):
        return None

    def hook_only(self, tensor, label):
        if isinstance(tensor, torch.Tensor) and tensor.requires_grad:
            tensor.register_hook(lambda g: None)

    f32 = {"l2_norms": lambda ts: [torch.linalg.vector_norm(t.detach()) for t in ts]}
    return {"grad-flow (own backward)": ({}, True), "hooks, loss.backward()": ({}, False),
            "pre-hooks only": ({"_on_boundary": no_boundary}, False),
            "hooks, no norm": ({"_on_boundary": hook_only}, False),
            "float32 norms": (f32, True)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    args, dev, model, step = arch_problem(ap)
    times: dict[str, list[float]] = {"bare": []}
    parts = variants()
    # one probe per variant, entered per step: grad-flow's looks for a reentrant checkpoint once
    probes = {name: GradientProbe(model, weights_from="grad", own_backward=own)
              for name, (_, own) in parts.items()}
    for _ in range(args.repeats):
        sync(dev)
        t = time.perf_counter()
        step()
        sync(dev)
        times["bare"].append(time.perf_counter() - t)
        for name, (patch, _) in parts.items():
            saved = {}
            for attr, fn in patch.items():
                owner = GradientProbe if attr == "_on_boundary" else grad_mod
                saved[(owner, attr)] = getattr(owner, attr)
                setattr(owner, attr, fn)
            try:
                with probes[name] as probe:
                    sync(dev)
                    t = time.perf_counter()
                    step(probe)
                    times.setdefault(name, []).append(time.perf_counter() - t)
            finally:
                for (owner, attr), fn in saved.items():
                    setattr(owner, attr, fn)
    bare = statistics.median(times["bare"])
    print(f"{args.arch} batch {args.batch_size} on {dev}, torch {torch.__version__}, "
          f"median of {args.repeats}")
    print(f"bare step {bare * 1e3:.1f} ms")
    for name in parts:
        print(f"{name:24} {statistics.median(times[name]) / bare:6.3f}x")


if __name__ == "__main__":
    main()

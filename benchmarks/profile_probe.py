"""torch.profiler view of one recorded step (GradientProbe) against a bare step: the operators and
Python calls that the probe adds, by self CPU time.

    python benchmarks/profile_probe.py [--device cuda] [--arch resnet110] [--batch-size 128]
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from resdiag.probes.grad import GradientProbe
from bench_probe import arch_problem
from resdiag.run.common import sync


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args, dev, model, step = arch_problem(ap)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    for name in ("bare", "recorded"):
        with GradientProbe(model, weights_from="grad", own_backward=True) as probe:
            if name == "bare":
                probe.close()
            sync(dev)
            with profile(activities=acts, with_stack=False) as prof:
                for _ in range(5):
                    step(probe if name == "recorded" else None)  # recorded: as grad-flow runs it
                sync(dev)
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events) / 5
        print(f"== {name}: self CPU time per step {total / 1e3:.2f} ms; top operators")
        print(events.table(sort_by="self_cpu_time_total", row_limit=14, max_name_column_width=40))


if __name__ == "__main__":
    main()

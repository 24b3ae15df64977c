"""torch.profiler view of one recorded step (GradientProbe) against a bare step: the operators and
Python calls that the probe adds, by self CPU time.

    python benchmarks/profile_probe.py [--device cuda] [--arch resnet110] [--batch-size 128]
"""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from resdiag.probes.grad import GradientProbe
from resdiag.run.common import resolve_device, sync
from resdiag.zoo import build, resolve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--arch", default="resnet110")
    ap.add_argument("--batch-size", type=int, default=128)
    args = ap.parse_args()
    dev = resolve_device(args.device)
    model = build(resolve(args.arch)).to(dev).train()
    x = torch.randn(args.batch_size, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (args.batch_size,), device=dev)

    def step():
        for p in model.parameters():
            p.grad = None
        nn.functional.cross_entropy(model(x), y).backward()

    for _ in range(3):
        step()
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    for name in ("bare", "recorded"):
        with GradientProbe(model, weights_from="grad") as probe:
            if name == "bare":
                probe.close()
            sync(dev)
            with profile(activities=acts, with_stack=False) as prof:
                for _ in range(5):
                    step()
                    if name == "recorded":
                        probe.step()
                sync(dev)
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events) / 5
        print(f"== {name}: self CPU time per step {total / 1e3:.2f} ms; top operators")
        print(events.table(sort_by="self_cpu_time_total", row_limit=14, max_name_column_width=40))


if __name__ == "__main__":
    main()

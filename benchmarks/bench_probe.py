"""Probe overhead and CLI start-up, measured side by side in one run.

    python benchmarks/bench_probe.py [--device auto] [--batch-size N] [--repeats R]

Prints, for resnet56 and resnet110, the median time of a bare forward+backward and of the same
step recorded by GradientProbe (hooks + one host sync per step), interleaved so that machine noise
hits both alike, and their ratio (target <= 1.05); what the underflow-safe float64-accumulated
norms cost against naive float32 ones, as a share of one step; the Monitor between recorded steps.
Then the wall time of `resdiag --help` against a bare `python -c pass`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

from resdiag.probes.grad import GradientProbe
from resdiag.run.common import resolve_device, sync
from resdiag.zoo import build, resolve


def step(model, x, y, dev):
    for p in model.parameters():
        p.grad = None
    nn.functional.cross_entropy(model(x), y).backward()


def problem(name: str, dev: torch.device, batch_size: int, narrow: int = 1, image_size: int = 32):
    """A zoo network in train mode on ``dev`` and one batch of CIFAR-shaped inputs and labels (seed 0),
    warmed up with 3 steps. ``narrow``: every width divided by it, and ``image_size``: smaller
    images, the same blocks and hooks at a fraction of the arithmetic: a stand-in on the CPU for a
    step whose time is the host's, as a small step on a fast GPU is (bench_monitor.py's --narrow)."""
    torch.manual_seed(0)
    model = build(resolve(name, width=1 / narrow if narrow != 1 else None,
                          input_shape=(3, image_size, image_size))).to(dev).train()
    x = torch.randn(batch_size, 3, image_size, image_size, device=dev)
    y = torch.randint(0, 10, (batch_size,), device=dev)
    for _ in range(3):
        step(model, x, y, dev)
    sync(dev)
    return model, x, y


def arch_problem(ap: argparse.ArgumentParser):
    """``ap`` with --device, --arch, --batch-size, --narrow and --image-size added, parsed; the
    problem they name (``problem``) and a step on it: bare, or ``step(probe)`` recorded as
    ``probed_step`` runs it. For the scripts that study one architecture."""
    ap.add_argument("--device", default="auto")
    ap.add_argument("--arch", default="resnet110")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--narrow", type=int, default=1, help="divide every width by N (host-cost stand-in)")
    ap.add_argument("--image-size", type=int, default=32)
    args = ap.parse_args()
    dev = resolve_device(args.device)
    model, x, y = problem(args.arch, dev, args.batch_size, args.narrow, args.image_size)
    return args, dev, model, lambda probe=None: (step(model, x, y, dev) if probe is None
                                                 else probed_step(model, x, probe, y))


def probed_step(model, x, probe: GradientProbe, y) -> None:
    """One recorded step as its caller runs it: through ``probe.backward`` for a probe made with
    ``own_backward`` (what ``grad-flow`` runs), else ``loss.backward()``; then the probe's one sync."""
    for p in model.parameters():
        p.grad = None
    loss = nn.functional.cross_entropy(model(x), y)
    probe.backward(loss) if probe.own_backward else loss.backward()
    probe.step()  # includes the single device->host copy


def bench_model(name: str, dev: torch.device, batch_size: int, repeats: int,
                weights_from: str = "grad", narrow: int = 1, image_size: int = 32) -> tuple[float, float]:
    """Median bare step and recorded step, interleaved. "grad": grad-flow's probe (own backward,
    weights from its autograd call); "hook": a hook per weight and per boundary, loss.backward()."""
    model, x, y = problem(name, dev, batch_size, narrow, image_size)
    bare, probed = [], []
    probe = GradientProbe(model, weights_from=weights_from, own_backward=weights_from == "grad")
    with probe:  # warm the probe's code path once (grad-flow's looks for a reentrant checkpoint once)
        probed_step(model, x, probe, y)
    for _ in range(repeats):
        t = time.perf_counter()
        step(model, x, y, dev)
        sync(dev)  # the bare step also waits for the device, as the probe's one sync does
        bare.append(time.perf_counter() - t)
        with probe:  # entered per step, so that the bare step runs without its hooks
            t = time.perf_counter()
            probed_step(model, x, probe, y)
            probed.append(time.perf_counter() - t)
    return statistics.median(bare), statistics.median(probed)


def bench_monitor_idle(dev: torch.device, batch_size: int, repeats: int) -> tuple[float, float]:
    """A step inside ``Monitor.record`` on a step that is not due, against a bare step."""
    from resdiag.api import Monitor

    torch.manual_seed(0)
    model = build(resolve("resnet56")).to(dev).train()
    monitor = Monitor(model, every=10**9)
    x = torch.randn(batch_size, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (batch_size,), device=dev)
    for _ in range(3):
        step(model, x, y, dev)
    bare, idle = [], []
    for i in range(repeats):
        t = time.perf_counter()
        step(model, x, y, dev)
        sync(dev)
        bare.append(time.perf_counter() - t)
        t = time.perf_counter()
        with monitor.record(i + 1):  # never due
            step(model, x, y, dev)
        sync(dev)
        idle.append(time.perf_counter() - t)
    return statistics.median(bare), statistics.median(idle)


def bench_norms(dev: torch.device, batch_size: int, repeats: int) -> tuple[float, float, float]:
    """What the underflow-safe norms cost: the weight-gradient norms of one resnet110 step, taken
    the naive way (float32 ``_foreach_norm``, which reads gradients below ~1e-19 as 0) and the way
    the probe takes them (``l2_norms``: float64 accumulation), against the step itself."""
    from resdiag.metrics.norms import l2_norms

    torch.manual_seed(0)
    model = build(resolve("resnet110")).to(dev).train()
    x = torch.randn(batch_size, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (batch_size,), device=dev)
    step(model, x, y, dev)
    grads = [p.grad for p in model.parameters() if p.grad is not None and p.ndim > 1]
    naive, safe, steps = [], [], []
    for _ in range(repeats * 5):
        t = time.perf_counter()
        torch.stack(torch._foreach_norm(grads)).cpu()
        naive.append(time.perf_counter() - t)
        t = time.perf_counter()
        torch.stack(l2_norms(grads)).cpu()
        safe.append(time.perf_counter() - t)
    for _ in range(repeats):
        t = time.perf_counter()
        step(model, x, y, dev)
        sync(dev)
        steps.append(time.perf_counter() - t)
    return statistics.median(naive), statistics.median(safe), statistics.median(steps)


def startup(repeats: int = 7) -> tuple[float, float]:
    def run(cmd):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    return run([sys.executable, "-c", "pass"]), run([sys.executable, "-m", "resdiag", "--help"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--narrow", type=int, default=1, help="divide every width by N (host-cost stand-in)")
    ap.add_argument("--image-size", type=int, default=32)
    args = ap.parse_args()
    dev = resolve_device(args.device)
    bs = args.batch_size or (128 if dev.type == "cuda" else 32)
    reps = args.repeats or (30 if dev.type == "cuda" else 7)
    print(f"device {dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'}), "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {bs}, {reps} repeats")
    # "grad": what `resdiag grad-flow` runs (its own backward: one autograd call, no hooks in it);
    # "hook": a hook per parameter and per boundary around the caller's loss.backward().
    for name in ("resnet56", "resnet110"):
        for weights_from in ("grad", "hook"):
            bare, probed = bench_model(name, dev, bs, reps, weights_from, args.narrow, args.image_size)
            print(f"{name:10s} bare fwd+bwd {bare * 1e3:8.1f} ms   recorded ({weights_from}) "
                  f"{probed * 1e3:8.1f} ms   ratio {probed / bare:.3f}  (target <= 1.05)")
    naive, safe, one_step = bench_norms(dev, bs, reps)
    print(f"norms     resnet110 weight grads: float32 {naive * 1e3:.2f} ms   float64-accumulated "
          f"{safe * 1e3:.2f} ms   difference {(safe - naive) / one_step * 100:+.2f}% of a "
          f"{one_step * 1e3:.1f} ms step")
    bare, idle = bench_monitor_idle(dev, bs, reps)
    print(f"monitor   resnet56 bare {bare * 1e3:8.1f} ms   inside Monitor.record, step not due "
          f"{idle * 1e3:8.1f} ms   ratio {idle / bare:.3f}  (target: indistinguishable, ~1.00)")
    python, cli = startup()
    print(f"startup   python -c pass {python:.3f} s   resdiag --help {cli:.3f} s   "
          f"resdiag's own share {cli - python:.3f} s  (target: --help < 0.3 s)")


if __name__ == "__main__":
    main()

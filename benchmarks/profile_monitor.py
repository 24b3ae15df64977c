"""Where a Monitor-recorded training step spends its time, phase by phase, against a bare step.

    python benchmarks/profile_monitor.py [--device cpu|cuda] [--models resnet18,gpt2] [--batch-size 8]
                                         [--image-size 112] [--seq-len 64] [--narrow 1] [--repeats 15]

The models and steps are benchmarks/bench_monitor.py's. For each model, interleaved bare and
recorded steps (median of R), with every phase timed on the host clock:

- ``forward+backward``: the user's forward and backward, with the Monitor's block hooks installed;
- ``reductions``: ``StepProbe.step`` (one float64 reduction over the activation gradients still
  held, every gradient and every weight; the host copy: the step's one sync);
- ``result``: building the GradFlowResult and its verdict from the host values (Python only);
- ``begin`` / ``other``: opening the step (hooks) and the rest of ``end`` (emitting the record);
- ``optimizer``: ``opt.step()``.

``--sync`` (CUDA) synchronises after every phase, so that each phase's figure includes the device
work it launched; without it the figures are what the host spends, which is what delays the next
launches when the device is idle. Then the torch operators the Monitor dispatches (counts by name:
on a GPU each computing one is a kernel launch; the same on any machine, without noise), and a
torch.profiler table of one recorded step's operators by self CPU time. The figures locate the
overhead that bench_monitor.py reports as one ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter, defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from bench_monitor import add_problem_args, problem
from resdiag.api import Monitor
from resdiag.probes.training import StepProbe

PHASES = ("begin", "forward+backward", "reductions", "result", "other", "optimizer")
CLOCK: dict[str, float] = defaultdict(float)  # seconds per phase of the current step


def timed(clock: dict, name: str, fn, sync):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        sync()
        clock[name] += time.perf_counter() - start
        return out
    return wrapper


def run(name: str, args) -> None:
    torch.manual_seed(0)
    model, loss_fn = problem(name, args.batch_size, args.device, args.image_size, args.seq_len,
                            args.narrow)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    cuda = args.device.startswith("cuda")
    device_sync = torch.cuda.synchronize if cuda else (lambda: None)
    sync = device_sync if args.sync else (lambda: None)
    clock = CLOCK
    mon = Monitor(model, every=1)

    def step(recorded: bool) -> dict[str, float]:
        clock.clear()
        opt.zero_grad(set_to_none=True)
        device_sync()
        start = time.perf_counter()
        if recorded:
            t = time.perf_counter()
            mon.begin(0)
            sync()
            clock["begin"] = time.perf_counter() - t
        t = time.perf_counter()
        loss_fn().backward()
        sync()
        clock["forward+backward"] = time.perf_counter() - t
        if recorded:
            t = time.perf_counter()
            mon.end()
            clock["other"] = time.perf_counter() - t - clock["reductions"] - clock["result"]
        t = time.perf_counter()
        opt.step()
        device_sync()
        clock["optimizer"] = time.perf_counter() - t
        clock["total"] = time.perf_counter() - start
        return dict(clock)

    for _ in range(3):
        step(False), step(True)
    bare, rec = defaultdict(list), defaultdict(list)
    for _ in range(args.repeats):
        for phase, v in step(False).items():
            bare[phase].append(v)
        for phase, v in step(True).items():
            rec[phase].append(v)
    med = lambda d, k: statistics.median(d[k]) * 1e3 if k in d else 0.0  # noqa: E731
    print(f"== {name}: bare step {med(bare, 'total'):.2f} ms, recorded {med(rec, 'total'):.2f} ms "
          f"({med(rec, 'total') / med(bare, 'total'):.3f}x); median ms per phase"
          f"{' (synchronised after each)' if args.sync else ''}")
    print(f"{'phase':18} {'bare':>9} {'recorded':>9} {'added':>9}")
    for phase in PHASES:
        b, r = med(bare, phase), med(rec, phase)
        print(f"{phase:18} {b:9.2f} {r:9.2f} {r - b:9.2f}")
    print(monitor_ops(mon, loss_fn, opt))
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=acts) as prof:
        step(True)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=40))


def monitor_ops(mon: Monitor, loss_fn, opt) -> str:
    """The top-level torch operators dispatched inside ``Monitor.begin``, by the hooks (recorded
    minus bare forward+backward) and inside ``Monitor.end``, by name: counts, not times, so they
    compare across machines and runs without noise. On a GPU each computing operator is a kernel
    launch (``detach``, ``reshape`` and ``resolve_*`` launch none)."""
    def count(fn, nested: bool = False) -> Counter:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            fn()
        return Counter(e.name for e in prof.events()
                       if (nested or e.cpu_parent is None) and e.name.startswith("aten::"))

    # the backward hooks' operators run nested in autograd's events: counted at every level
    opt.zero_grad(set_to_none=True)
    bare = count(lambda: loss_fn().backward(), nested=True)
    opt.zero_grad(set_to_none=True)
    begin = count(lambda: mon.begin(0))
    hooks = count(lambda: loss_fn().backward(), nested=True) - bare
    end = count(mon.end)
    listed = ", ".join(f"{name.removeprefix('aten::')} {n}" for name, n in end.most_common())
    return (f"operators dispatched: begin {sum(begin.values())}, hooks {sum(hooks.values())}, "
            f"end {sum(end.values())} ({listed})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_problem_args(ap)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--sync", action="store_true", help="synchronise the device after every phase")
    args = ap.parse_args()
    sync = torch.cuda.synchronize if args.sync and args.device.startswith("cuda") else (lambda: None)
    # the phases inside Monitor.end, timed where they are called (the library is not changed)
    StepProbe.step = timed(CLOCK, "reductions", StepProbe.step, sync)
    Monitor._recording = timed(CLOCK, "result", Monitor._recording, sync)
    cuda = args.device.startswith("cuda")
    where = torch.cuda.get_device_name() if cuda else f"{torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {args.device} ({where}), batch {args.batch_size}")
    for name in args.models.split(","):
        run(name, args)


if __name__ == "__main__":
    main()

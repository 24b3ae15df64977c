"""The Monitor's cost inside a training step, on ResNet-18 and GPT-2-small shaped models.

    python benchmarks/bench_monitor.py [--repeats R] [--models resnet18,gpt2] [--device cpu|cuda]

For each model, interleaved (one of each per repeat, so that machine noise hits all alike), the
median wall time of: a bare training step (zero_grad, forward, backward, SGD step); the same step
inside ``Monitor.record`` on a step that is not due (target <= 1.01x); on a recorded step
(target <= 1.10x); recorded with ``features=True`` (target <= 1.5x); and with ``features=True`` on a
recording where the weight spectra are not due (``spectra_every``: the feature ranks alone).
Prints the ratios to the bare step, and the seconds the weight spectra add to a recording,
(features - no spectra) x bare step: they depend on the weights alone, not on the batch, so the
``features`` ratio falls as the batch (--batch-size, --image-size, --seq-len) grows; and the ms a
recorded step adds. ``--narrow N`` divides every width by N (same modules, hooks and parameters, few
flops): a step then costs mostly host time, as a small step on a fast GPU does. ResNet-18 is
torchvision's layout ([2, 2, 2, 2] BasicBlocks, 7x7 stem, 1000 classes), defined here so that no
torchvision is needed; GPT-2-small is ``GPT2LMHeadModel(GPT2Config())`` (12 layers, 768 wide, 124M
parameters), random init. On CUDA each timed step ends with a ``torch.cuda.synchronize()`` (the
bare step included), so the ratios compare whole steps.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from resdiag.api import Monitor


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def resnet18(classes: int = 1000, narrow: int = 1) -> nn.Module:
    """torchvision's ResNet-18; ``narrow``: every width divided by it (same modules, few flops)."""
    w = 64 // narrow
    layers = [nn.Conv2d(3, w, 7, 2, 3, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
              nn.MaxPool2d(3, 2, 1)]
    cin = w
    for cout, stride in [(w, 1), (2 * w, 2), (4 * w, 2), (8 * w, 2)]:
        layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8 * w, classes)]
    return nn.Sequential(*layers)


def problem(name: str, batch: int, device: str = "cpu", image: int = 112, seq: int = 64, narrow: int = 1):
    """The model and its loss closure. ``narrow`` divides every width (ResNet-18's channels,
    GPT-2's embedding and vocabulary): the same modules, parameters and hooks at a fraction of the
    arithmetic, so that a step costs mostly host time, as a small step on a fast GPU does."""
    g = torch.Generator().manual_seed(0)
    if name == "resnet18":
        model = resnet18(narrow=narrow).to(device)
        x, y = torch.randn(batch, 3, image, image, generator=g), torch.randint(0, 1000, (batch,), generator=g)
        x, y = x.to(device), y.to(device)
        return model, lambda: nn.functional.cross_entropy(model(x), y)
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_embd=768 // narrow, vocab_size=50257 // narrow)
    model = GPT2LMHeadModel(config).to(device)
    ids = torch.randint(0, config.vocab_size, (batch, seq), generator=g).to(device)
    return model, lambda: model(input_ids=ids, labels=ids).loss


def bench(name: str, batch: int, repeats: int, device: str = "cpu", image: int = 112,
          seq: int = 64, narrow: int = 1) -> dict[str, float]:
    torch.manual_seed(0)
    model, loss_fn = problem(name, batch, device, image, seq, narrow)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    monitors = {"between": Monitor(model, every=2), "recorded": Monitor(model, every=2),
                "features": Monitor(model, every=2, features=True),
                # spectra on the warm-up recording only: every timed one has the feature ranks alone
                "no_spectra": Monitor(model, every=2, features=True, spectra_every=10**9)}
    steps = {"between": 1, "recorded": 0, "features": 0, "no_spectra": 0}

    def step(kind: str | None) -> float:
        opt.zero_grad(set_to_none=True)
        sync()
        t = time.perf_counter()
        if kind is None:
            loss_fn().backward()
        else:
            with monitors[kind].record(steps[kind]):
                loss_fn().backward()
        opt.step()
        sync()
        return time.perf_counter() - t

    kinds = [None, "between", "recorded", "features", "no_spectra"]
    for kind in kinds:  # warm-up
        step(kind)
    times: dict = {k: [] for k in kinds}
    for _ in range(repeats):
        for kind in kinds:
            times[kind].append(step(kind))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"bare_s": med[None], "added_ms": (med["recorded"] - med[None]) * 1e3,
            **{k: med[k] / med[None] for k in kinds[1:]}}


def add_problem_args(ap: argparse.ArgumentParser) -> None:
    """The options that name the models and their steps (also profile_monitor.py's)."""
    ap.add_argument("--models", default="resnet18,gpt2")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--image-size", type=int, default=112, help="ResNet-18's input side")
    ap.add_argument("--seq-len", type=int, default=64, help="GPT-2's tokens per sequence")
    ap.add_argument("--narrow", type=int, default=1,
                    help="divide every width by this: the same hooks and parameters, few flops")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9)
    add_problem_args(ap)
    args = ap.parse_args()
    cuda = args.device.startswith("cuda")
    where = torch.cuda.get_device_name() if cuda else f"{torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {args.device} ({where}), batch {args.batch_size}, ResNet-18 at "
          f"{args.image_size}x{args.image_size}, GPT-2 sequences of {args.seq_len}, "
          f"median of {args.repeats}, "
          "interleaved")
    print(f"{'model':10} {'bare step':>10} {'between':>8} {'recorded':>9} {'features':>9} {'no spectra':>10}"
          f" {'spectra':>8}  (targets 1.01 1.10 1.5 1.5; spectra: seconds they add to a recording)")
    for name in args.models.split(","):
        r = bench(name, args.batch_size, args.repeats, args.device, args.image_size, args.seq_len,
                  args.narrow)
        print(f"{name:10} {r['bare_s']:9.3f}s {r['between']:7.3f}x {r['recorded']:8.3f}x "
              f"{r['features']:8.3f}x "
              f"{r['no_spectra']:9.3f}x {(r['features'] - r['no_spectra']) * r['bare_s']:7.2f}s"
              f"  recorded step adds {r['added_ms']:.2f} ms")


if __name__ == "__main__":
    main()

"""A trained network on held-out data: BN statistics re-estimated, errors, and layer responses.

After a short run, BatchNorm's running statistics lag the weights (momentum 0.1 averages over the
last ~10 steps, taken while the weights moved), so an eval-mode network can score worse than it
is. Every held-out number here is taken after ``reestimate_bn``: the running statistics are reset
and recomputed as the exact average over the training split (at most REESTIMATE_MAX images) with
the final weights (the "precise BN" of Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm", §3).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from resdiag.data import DataSpec, batches, load_digits_tensors, parse_data
from resdiag.probes.layers import find_blocks
from resdiag.run.common import resolve_device
from resdiag.run.target import TargetSpec, build_target
from resdiag.train.data import train_set

EVAL_BATCH = 256
REESTIMATE_MAX = 10_000  # training images averaged for the BN statistics (digits: all 1,397)


@dataclass(frozen=True)
class Split:
    inputs: torch.Tensor
    labels: torch.Tensor


def splits(data: str, input_shape: tuple[int, ...], num_classes: int, seed: int,
           synthetic_size: int = 512) -> tuple[Split, Split | None]:
    """(training split, held-out split) of ``data``. Digits: the fixed split of resdiag.data.
    CIFAR-10: REESTIMATE_MAX training images and the 10,000 of ``test_batch``. Synthetic: the set the
    run of ``seed`` trains on (its class patterns depend on the seed) and no held-out split."""
    spec = parse_data(data)
    if spec.kind == "digits":
        tr = load_digits_tensors(spec, input_shape, num_classes)
        te = load_digits_tensors(DataSpec("digits", split="test"), input_shape, num_classes)
        return Split(*tr), Split(*te)
    ts = train_set(spec, input_shape, num_classes, seed, synthetic_size, augment=False)
    train = Split(*ts.batch(0, min(len(ts), REESTIMATE_MAX)))
    if spec.kind != "cifar10":
        return train, None
    test = next(batches(DataSpec("cifar10", spec.path, "test"), input_shape, num_classes, 10_000, 1, 0))
    return train, Split(*test)


def reestimate_bn(model: nn.Module, train: Split) -> None:
    """Reset every BN layer's running statistics and recompute them over ``train`` (its first
    REESTIMATE_MAX images): afterwards each holds the mean and unbiased variance of its input there."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: the exact mean over the batches seen
    model.train()
    # One batch: momentum=None averages per *batch*, so one batch makes the statistics exactly the
    # mean and (unbiased) variance over these images; no_grad frees each activation as it goes.
    with torch.no_grad():
        model(train.inputs[:REESTIMATE_MAX].to(_device(model)))
    for m, mom in zip(bns, saved, strict=True):
        m.momentum = mom
    model.eval()


def error(model: nn.Module, split: Split) -> float:
    """Fraction of ``split`` misclassified, eval mode."""
    model.eval()
    wrong, dev = 0, _device(model)
    with torch.no_grad():
        for i in range(0, len(split.labels), EVAL_BATCH):
            pred = model(split.inputs[i:i + EVAL_BATCH].to(dev)).argmax(1).cpu()
            wrong += int((pred != split.labels[i:i + EVAL_BATCH]).sum())
    return wrong / len(split.labels)


def bn_responses(model: nn.Module, split: Split) -> list[float]:
    """Std of the output of every BatchNorm inside a residual block (for plain twins, the same
    layers), over all elements of the split, eval mode: He et al. 2015, Fig. 7 ("the outputs of each
    3x3 layer, after BN and before other nonlinearity")."""
    names = []
    for block_name, block in find_blocks(model):
        names += [(f"{block_name}.{n}", m) for n, m in block.named_modules()
                  if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    outs: dict[str, list[torch.Tensor]] = {n: [] for n, _ in names}
    handles = [m.register_forward_hook(lambda _m, _i, o, n=n: outs[n].append(o.detach()))
               for n, m in names]
    model.eval()
    dev = _device(model)
    try:
        with torch.no_grad():
            for i in range(0, len(split.labels), EVAL_BATCH):
                model(split.inputs[i:i + EVAL_BATCH].to(dev))
    finally:
        for h in handles:
            h.remove()
    return [torch.cat(outs[n]).double().std().item() for n, _ in names]


def trained_model(cfg, checkpoint: Path, seed: int, train: Split, device: str = "cpu") -> nn.Module:
    """The network of ``checkpoint`` with its BN statistics re-estimated on ``train``, eval mode."""
    model = build_target(TargetSpec(arch=cfg, seed=seed, checkpoint=checkpoint)).model.to(resolve_device(device))
    reestimate_bn(model, train)
    return model


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")

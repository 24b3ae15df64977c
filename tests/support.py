"""Problems shared by many test files: small models of every family, the autograd reference for the
gradient probe, and a tiny CIFAR-10 folder. Test modules import from here, never from each other."""

from __future__ import annotations

import math
import pickle

import numpy as np
import torch
from torch import nn

from resdiag.probes.layers import find_blocks, find_layers
from resdiag.zoo import FAMILIES, parse_shortcut, resolve

# Shallow instances of every family and every variant: a new family is tested once registered.
SHALLOW = {name: 8 if resolve(name).family == "resnet" else 2 for name in FAMILIES}
SMALL_SHAPE = {"resnet": ((3, 8, 8), 0.25), "mlp": ((3, 8, 8), 8), "transformer": ((6,), 16)}
VARIANTS = [{"shortcut": parse_shortcut(s)} for s in
            ("scale:0.5,0.5", "gate:-2", "shortcut_gate", "conv", "dropout:0.5")]
VARIANTS += [{"projection": "B"}, {"norm": "none"}, {"block": "bottleneck"}]


def small(name, **kw):
    depth = 11 if kw.get("block") == "bottleneck" else SHALLOW[name]
    shape, width = SMALL_SHAPE[resolve(name).family]
    return resolve(name, depth, width=width, input_shape=shape, **kw)


ALL_SMALL = [small(n) for n in FAMILIES] + [small("resnet", **v) for v in VARIANTS]


def reference(model, x, y):
    """||dE/dW|| per layer and ||dE/dx_l|| per boundary from torch.autograd.grad, by hand.

    Boundaries: every block input, and the final output of the last block."""
    blocks = [m for _, m in find_blocks(model)]
    seen = []
    handles = [b.register_forward_pre_hook(lambda m, a: seen.append(("in", a[0]))) for b in blocks]
    handles.append(blocks[-1].register_forward_hook(lambda m, a, out: seen.append(("out", out))))
    loss = nn.functional.cross_entropy(model(x), y)
    for h in handles:
        h.remove()
    last_out = max(i for i, (kind, _) in enumerate(seen) if kind == "out")
    inputs = [t for i, (kind, t) in enumerate(seen) if kind == "in" or i == last_out]
    weights = [layer.weight for layer in find_layers(model)]
    grads = torch.autograd.grad(loss, weights + inputs, retain_graph=True)
    norms = [math.sqrt(float((g.double() ** 2).sum())) for g in grads]
    return loss, norms[: len(weights)], norms[len(weights):]


def write_cifar(root, n=7):
    """A CIFAR-10 folder in the standard python format: n random images in each of the six batches."""
    d = root / "cifar-10-batches-py"
    d.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        with open(d / name, "wb") as fh:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": b"x"}, fh, protocol=2)
    return d

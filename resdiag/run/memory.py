"""Refuse up front a run that would not fit in memory, with an estimate, instead of being killed.

The estimate is analytic, from the config alone (nothing is built): the activations autograd keeps
for the backward pass plus weights and gradients, in float32.

- CIFAR ResNet: a block keeps about ``SAVED_PER_BLOCK`` tensors the size of its output map
  (convolution, BN and ReLU outputs, the shortcut and the sum); stage s of n blocks has maps of
  ``width * c_s * 16 * (H/2^s) * (W/2^s)`` values (times 4 for bottleneck outputs).
- MLP: a block keeps ``SAVED_PER_MLP_BLOCK`` vectors of ``width`` values.
- Transformer: a layer keeps ``SAVED_PER_TOKEN`` vectors of ``width`` values per token (qkv, norms,
  the 4x feed-forward) and its attention maps (heads x T x T).
It errs high on purpose (a refused run can lower --batch-size; a killed one has lost its work).
"""

from __future__ import annotations

import math

from resdiag.errors import ResdiagError
from resdiag.zoo.config import MLPConfig, ModelConfig, ResNetConfig, TransformerConfig

SAVED_PER_BLOCK = 10
SAVED_PER_MLP_BLOCK = 5
SAVED_PER_TOKEN = 24
BYTES = 4
HEADROOM = 0.8  # use at most this share of the memory that is free
MAX_BLOCKS = 100_000  # beyond this, building the Python module tree alone takes minutes


def estimate_bytes(cfg: ModelConfig, batch_size: int, backward: bool = True) -> int:
    """Bytes a forward and backward pass (``backward``), or a forward pass recording feature
    Gram matrices (float64, batch x batch per boundary), of ``batch_size`` inputs needs, roughly."""
    if isinstance(cfg, TransformerConfig):
        t, d = cfg.input_shape[0], cfg.width
        blocks, maps, per_block = cfg.depth, [t * (d + 2 * cfg.heads * t // SAVED_PER_TOKEN)], SAVED_PER_TOKEN
    elif isinstance(cfg, MLPConfig):
        blocks, maps, per_block = cfg.depth, [cfg.width], SAVED_PER_MLP_BLOCK
    else:
        n = cfg.blocks_per_stage
        _, h, w = cfg.input_shape
        expansion = 4 if cfg.block == "bottleneck" else 1
        c0 = 16 * cfg.width
        maps = [c0 * 2**s * expansion * max(1, h // 2**s) * max(1, w // 2**s) for s in range(3)]
        blocks, per_block = 3 * n, SAVED_PER_BLOCK
    params = sum(_weight_terms(cfg).values())
    if backward:
        kept = batch_size * per_block * sum(maps) * blocks / len(maps)
        return int((kept + 3 * params) * BYTES)
    live = 4 * batch_size * max(maps)  # a few maps alive at once under no_grad
    grams = (blocks + 1) * batch_size**2 * 8
    return int((live + params) * BYTES + grams)


def available_bytes(device) -> int | None:
    """Free memory on ``device``: CUDA's free memory, or MemAvailable on Linux; None if unknown."""
    if getattr(device, "type", str(device)).startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_fits(cfg: ModelConfig, batch_size: int, device, backward: bool = True) -> None:
    """Raise ResdiagError when the run needs more than ``HEADROOM`` of the free memory."""
    blocks = 3 * cfg.blocks_per_stage if isinstance(cfg, ResNetConfig) else cfg.depth
    if blocks > MAX_BLOCKS:
        raise ResdiagError(f"{cfg.name} has {blocks:,} blocks; resdiag builds at most {MAX_BLOCKS:,}")
    need = estimate_bytes(cfg, batch_size, backward)
    free = available_bytes(device)
    if free is not None and need > HEADROOM * free:
        what = "forward and backward" if backward else "forward with feature Gram matrices"
        raise ResdiagError(f"{cfg.name} at batch {batch_size} needs about {_gib(need)} ({what}), but only "
                           f"{_gib(free)} is free on {device}: {_culprit(cfg, backward, free)}")


def _weight_terms(cfg: ModelConfig) -> dict[str, int]:
    """The model's weights, split by the options that set them (their sum is estimate_bytes's
    ``params``; the ResNet classifier is the "--num-classes" term)."""
    if isinstance(cfg, TransformerConfig):
        d = cfg.width
        return {"--depth or --width": cfg.depth * (4 + 2 * cfg.mlp_ratio) * d * d,
                "--vocab or --width": cfg.vocab_size * d, "--num-classes or --width": cfg.num_classes * d}
    if isinstance(cfg, MLPConfig):
        return {"--depth or --width": cfg.depth * cfg.width * (cfg.width + 1),
                "--input-shape or --width": math.prod(cfg.input_shape) * cfg.width,
                "--num-classes or --width": cfg.width * cfg.num_classes}
    c0, expansion = 16 * cfg.width, 4 if cfg.block == "bottleneck" else 1
    return {"--depth or --width": cfg.blocks_per_stage * sum(2 * 9 * (c0 * 2**s) ** 2 * expansion
                                                             for s in range(3)),
            "--num-classes or --width": 4 * c0 * expansion * cfg.num_classes}


def _culprit(cfg: ModelConfig, backward: bool, free: int) -> str:
    """What to lower: the largest share of the weights when the weights alone do not fit, else the
    batch; the options as the CLI spells them (a check config's keys are the same words)."""
    fixed = estimate_bytes(cfg, 0, backward)  # weights (and their gradients): no batch at all
    if fixed > HEADROOM * free:
        terms = _weight_terms(cfg)
        worst = max(terms, key=terms.__getitem__)
        return (f"its weights alone need {_gib(fixed)}, mostly through {worst.split(' or ')[0]}: "
                f"lower {worst} (the batch size does not help)")
    lo, hi = 0, 1  # the largest batch whose estimate fits (the Gram term grows as batch^2): bisect
    while estimate_bytes(cfg, hi, backward) <= HEADROOM * free:
        lo, hi = hi, 2 * hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if estimate_bytes(cfg, mid, backward) <= HEADROOM * free else (lo, mid)
    if lo >= 1:
        return f"lower the batch size (about {lo:,} fits)"  # --batch-size, --rank-batch-size, batch_size
    shape = "the sequence length (--input-shape)" if isinstance(cfg, TransformerConfig) else "--input-shape"
    return ("even a batch of 1 does not fit: lower --width or --depth" if isinstance(cfg, MLPConfig)
            else f"even a batch of 1 does not fit: lower --width, --depth or {shape}")


def _gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB"

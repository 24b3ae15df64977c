"""Training data: a fixed set, visited epoch by epoch in a seeded order and split over processes.

The samples of step s are a pure function of (seed, s, rank, world size): the order of epoch e is
``randperm`` from a generator seeded by (seed, e), the global batch of step s is the next
``batch_size`` indices of that order (the last incomplete batch of an epoch is dropped), and
process r of W takes the r-th of W equal slices of it (DistributedSampler's semantics: every
process a different part, all from the same seed). Augmentation draws from a generator seeded
by (seed, s) for the whole global batch, so one process and two see the same augmented samples.
A resumed run needs no data-loader state.

- synthetic: ``synthetic_size`` samples x = noise + SIGNAL * a pattern of the sample's class (both
  N(0, 1), drawn once from the seed; SIGNAL = 0.5). Pure noise with random labels can only be
  memorised, which takes many epochs; with a class pattern the loss falls within tens of steps.
- digits: the 1,397 images of the scikit-learn digits' training split (``resdiag.data``: fixed
  stratified split, standardised, fitted to the model's input shape); no augmentation (a flipped
  or shifted 8x8 digit is often another digit). The 400 test images are never trained on.
- CIFAR-10: the 50,000 training images (``resdiag.data.load_cifar10``), scaled to [0, 1] and
  normalised per channel, then He et al.'s augmentation (2015, section 4.2): 4 pixels of zeros
  padded on each side, a random 32x32 crop, a random horizontal flip.
"""

from __future__ import annotations

import torch

from resdiag.data import CIFAR_MEAN, CIFAR_STD, DataSpec, load_cifar10, load_digits_tensors
from resdiag.errors import ResdiagError

PAD = 4  # He et al. 2015, section 4.2
# Synthetic: x = noise + SIGNAL * pattern of the class. With 1 the task is solved in ~20 steps of
# ResNet-20; with 0.3 the error is still ~60% after 50. 0.5 leaves the loss falling for a while.
SIGNAL = 0.5
_MASK = (1 << 63) - 1


def mix(*parts: int) -> int:
    """A 63-bit seed from integers (splitmix64 steps): distinct streams for (seed, purpose, step)."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (p & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h = (h ^ (h >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
    return h & _MASK


class TrainSet:
    """Inputs and labels on the CPU; ``batch`` gives one process's part of one step's batch."""

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor, seed: int, *, cifar: bool = False,
                 augment: bool = False):
        self.inputs, self.labels, self.seed = inputs, labels, seed
        self.cifar, self.augment = cifar, augment and cifar
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.labels)

    def indices(self, step: int, batch_size: int) -> torch.Tensor:
        """The indices of the global batch of ``step``."""
        per_epoch = len(self) // batch_size
        epoch, i = divmod(step, per_epoch)
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(mix(self.seed, 1, epoch))
            self._epoch, self._order = epoch, torch.randperm(len(self), generator=gen)
        return self._order[i * batch_size:(i + 1) * batch_size]

    def batch(self, step: int, batch_size: int, rank: int = 0, world: int = 1) -> tuple[torch.Tensor, ...]:
        """(inputs, labels) of process ``rank`` of ``world`` at ``step``; ``batch_size`` is global."""
        local = batch_size // world
        part = slice(rank * local, (rank + 1) * local)
        idx = self.indices(step, batch_size)[part]
        x, y = self.inputs[idx], self.labels[idx]
        if self.cifar:
            mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
            std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
            x = (x.float() / 255 - mean) / std
        if self.augment:
            gen = torch.Generator().manual_seed(mix(self.seed, 2, step))
            shifts = torch.randint(0, 2 * PAD + 1, (batch_size, 2), generator=gen)[part]
            flips = (torch.rand(batch_size, generator=gen) < 0.5)[part]
            x = pad_crop_flip(x, shifts, flips)
        return x, y


def pad_crop_flip(x: torch.Tensor, shifts: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Zero-pad each image by PAD pixels, crop the original size at offset ``shifts[i]`` (row,
    column, each in 0..2*PAD), and mirror left-right where ``flips[i]``."""
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (PAD, PAD, PAD, PAD))
    rows = (shifts[:, 0, None] + torch.arange(h)).view(n, 1, h, 1)
    cols = (shifts[:, 1, None] + torch.arange(w)).view(n, 1, 1, w)
    crops = padded[torch.arange(n).view(n, 1, 1, 1), torch.arange(c).view(1, c, 1, 1), rows, cols]
    return torch.where(flips.view(n, 1, 1, 1), crops.flip(3), crops)


def synthetic_set(size: int, input_shape: tuple[int, ...], num_classes: int, seed: int) -> TrainSet:
    gen = torch.Generator().manual_seed(mix(seed, 0))
    patterns = torch.randn((num_classes, *input_shape), generator=gen)
    labels = torch.randint(0, num_classes, (size,), generator=gen)
    inputs = torch.randn((size, *input_shape), generator=gen) + SIGNAL * patterns[labels]
    return TrainSet(inputs, labels, seed)


def train_set(spec: DataSpec, input_shape: tuple[int, ...], num_classes: int, seed: int,
              synthetic_size: int, augment: bool = True) -> TrainSet:
    """The training set of ``spec`` for a model of this input shape and number of classes."""
    if spec.kind == "synthetic":
        return synthetic_set(synthetic_size, input_shape, num_classes, seed)
    if spec.kind == "digits":
        inputs, labels = load_digits_tensors(DataSpec("digits"), input_shape, num_classes)
        return TrainSet(inputs, labels, seed)
    if tuple(input_shape) != (3, 32, 32):
        raise ResdiagError(f"CIFAR-10 images are 3,32,32 but the model takes "
                           f"{','.join(map(str, input_shape))}")
    if num_classes != 10:
        raise ResdiagError(f"CIFAR-10 has 10 classes but the model has {num_classes}")
    images, labels = load_cifar10(spec.path, train=True)
    return TrainSet(torch.from_numpy(images), torch.from_numpy(labels), seed, cifar=True, augment=augment)

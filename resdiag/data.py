"""Input batches: synthetic, the scikit-learn digits, or CIFAR-10 from a local directory.

Synthetic: images x ~ N(0, 1) of the model's input shape, labels uniform in {0..classes-1}, drawn
from a CPU generator seeded by ``seed`` (so CPU and GPU runs see the same numbers).

CIFAR-10: the standard "python version" on disk (``cifar-10-batches-py``: ``data_batch_1`` ..
``data_batch_5``, ``test_batch``; each a pickled dict with ``b"data"``, a uint8 array N x 3072 in
channel-major order, and ``b"labels"``). The pickles are read with an unpickler that only admits
numpy arrays and plain containers, so a hostile file cannot run code. Pixels are scaled to [0, 1]
and normalised with the usual per-channel mean and std.

Digits (``digits``): the 1,797 real 8x8 handwritten digits bundled with scikit-learn
(``sklearn.datasets.load_digits``, UCI "Optical Recognition of Handwritten Digits"; no download).
Fixed split, the same for every run: for each class c, the images of c in file order are permuted
by ``numpy.random.default_rng(DIGITS_SPLIT_SEED + c)`` and the first DIGITS_TEST_PER_CLASS go to the
test split, the rest to the training split (400 test, 1,397 train, stratified). Pixels (0..16) are
divided by 16 and standardised with the mean and std of the training split's pixels. An image is
fitted to the model's input shape C,H,W by bilinear resizing of the 8x8 grid to H x W (none when H,W
is 8,8) and repeating the grey channel C times; a flat input shape (64,) takes the 64 pixels.
``digits`` is the default data of ``train`` and ``claims`` when scikit-learn is importable.
"""

from __future__ import annotations

import functools
import io
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from resdiag.errors import ResdiagError

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
DIGITS_SPLIT_SEED = 0
DIGITS_TEST_PER_CLASS = 40  # 400 of 1,797 held out, 40 of each class (each class has 174-183)
DIGITS_CLASSES = 10


@dataclass(frozen=True)
class DataSpec:
    kind: str  # "synthetic", "digits" or "cifar10"
    path: Path | None = None
    split: str = "train"  # "train" or "test": which split ``batches`` draws from (digits)

    def describe(self) -> str:
        base = self.kind if self.path is None else f"{self.kind}:{self.path}"
        return base if self.split == "train" else f"{base} ({self.split} split)"


def has_sklearn() -> bool:
    import importlib.util

    return importlib.util.find_spec("sklearn") is not None


def default_data() -> str:
    """``digits`` when scikit-learn is importable (real images, offline), else ``synthetic``."""
    return "digits" if has_sklearn() else "synthetic"


def parse_data(text: str) -> DataSpec:
    """``synthetic``, ``digits`` or ``cifar10:PATH`` (PATH: the ``cifar-10-batches-py`` folder or
    its parent)."""
    kind, sep, rest = text.partition(":")
    kind = kind.strip().lower()
    if kind == "synthetic" and not sep:
        return DataSpec("synthetic")
    if kind == "digits" and not sep:
        if not has_sklearn():
            raise ResdiagError("--data digits needs scikit-learn (pip install scikit-learn), which does "
                               "not import here; use --data synthetic")
        return DataSpec("digits")
    if kind == "cifar10" and rest:
        path = Path(rest).expanduser()
        if (path / "cifar-10-batches-py").is_dir():
            path = path / "cifar-10-batches-py"
        if not path.is_dir():
            raise ResdiagError(f"CIFAR-10 directory not found: {rest} (expected cifar-10-batches-py)")
        return DataSpec("cifar10", path)
    raise ResdiagError(f"unknown data {text!r}: use 'synthetic', 'digits' or 'cifar10:PATH'")


class _SafeUnpickler(pickle.Unpickler):
    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        raw = path.read_bytes()
        d = _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
        data = np.asarray(d[b"data"], dtype=np.uint8)
        labels = np.asarray(d[b"labels"], dtype=np.int64)
    except FileNotFoundError:
        raise ResdiagError(f"CIFAR-10 file missing: {path}") from None
    except Exception as exc:  # truncated, wrong format, hostile: all the same to the user
        raise ResdiagError(f"CIFAR-10 file {path} is not a valid batch ({type(exc).__name__})") from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ResdiagError(f"CIFAR-10 file {path} has shape {data.shape}, expected N x 3072 with N labels")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(path: Path, train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """All images (uint8, N x 3 x 32 x 32) and labels of the training or test split."""
    names = TRAIN_FILES if train else ("test_batch",)
    parts = [_read_batch(path / n) for n in names]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def digits_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The images (float32, N x 8 x 8, standardised) and labels of the ``train`` or ``test`` split."""
    if split not in ("train", "test"):
        raise ResdiagError(f"unknown split {split!r}: use train or test")
    images, labels = (a.copy() for a in _digits())
    test = np.zeros(len(labels), dtype=bool)
    for c in range(DIGITS_CLASSES):
        idx = np.flatnonzero(labels == c)
        order = np.random.default_rng(DIGITS_SPLIT_SEED + c).permutation(len(idx))
        test[idx[order[:DIGITS_TEST_PER_CLASS]]] = True
    mean, std = images[~test].mean(), images[~test].std()
    keep = test if split == "test" else ~test
    return ((images[keep] - mean) / std).astype(np.float32), labels[keep]


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images.astype(np.float64) / 16.0, d.target.astype(np.int64)


def fit_digits(images: np.ndarray, input_shape: tuple[int, ...]):
    """N x 8 x 8 images as a float tensor of shape N x ``input_shape`` (see the module docstring)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images))
    shape = tuple(input_shape)
    if shape == (64,):
        return x.reshape(len(x), 64)
    if len(shape) != 3 or min(shape) < 1:
        raise ResdiagError(f"digits are 8x8 grey images: the model must take C,H,W or 64 inputs, "
                           f"not {','.join(map(str, shape))}")
    c, h, w = shape
    x = x.unsqueeze(1)
    if (h, w) != (8, 8):
        x = torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    return x.expand(-1, c, -1, -1).contiguous()


def load_digits_tensors(spec: DataSpec, input_shape: tuple[int, ...], num_classes: int):
    """(inputs, labels) of the digits split ``spec.split``, fitted to the model's input shape."""
    import torch

    if num_classes != DIGITS_CLASSES:
        raise ResdiagError(f"digits have {DIGITS_CLASSES} classes but the model has {num_classes}")
    images, labels = digits_split(spec.split)
    return fit_digits(images, input_shape), torch.from_numpy(labels)


def batches(
    spec: DataSpec,
    input_shape: tuple[int, ...],
    num_classes: int,
    batch_size: int,
    count: int,
    seed: int,
) -> Iterator[tuple]:
    """``count`` (inputs, labels) pairs of CPU tensors."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    if spec.kind == "synthetic":
        for _ in range(count):
            x = torch.randn((batch_size, *input_shape), generator=gen)
            y = torch.randint(0, num_classes, (batch_size,), generator=gen)
            yield x, y
        return
    if spec.kind == "digits":
        xs, ys = load_digits_tensors(spec, input_shape, num_classes)
        if batch_size > len(ys):
            raise ResdiagError(f"--batch-size {batch_size} is larger than the digits {spec.split} "
                               f"split ({len(ys)} images)")
        for _ in range(count):  # distinct images within a batch
            idx = torch.randperm(len(ys), generator=gen)[:batch_size]
            yield xs[idx], ys[idx]
        return
    if tuple(input_shape) != (3, 32, 32):
        raise ResdiagError(f"CIFAR-10 images are 3,32,32 but the model takes {input_shape}")
    if num_classes != 10:
        raise ResdiagError(f"CIFAR-10 has 10 classes but the model has {num_classes}")
    images, labels = load_cifar10(spec.path, train=spec.split == "train")
    mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    for _ in range(count):
        idx = torch.randint(0, len(images), (batch_size,), generator=gen).numpy()
        x = (torch.from_numpy(images[idx]).float() / 255 - mean) / std
        yield x, torch.from_numpy(labels[idx])

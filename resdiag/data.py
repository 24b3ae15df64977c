"""Input batches: synthetic by default, or CIFAR-10 from a local directory.

Synthetic: images x ~ N(0, 1) of the model's input shape, labels uniform in {0..classes-1}, drawn
from a CPU generator seeded by ``seed`` (so CPU and GPU runs see the same numbers).

CIFAR-10: the standard "python version" on disk (``cifar-10-batches-py``: ``data_batch_1`` ..
``data_batch_5``, ``test_batch``; each a pickled dict with ``b"data"``, a uint8 array N x 3072 in
channel-major order, and ``b"labels"``). The pickles are read with an unpickler that only admits
numpy arrays and plain containers, so a hostile file cannot run code. Pixels are scaled to [0, 1]
and normalised with the usual per-channel mean and std.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class DataSpec:
    kind: str  # "synthetic" or "cifar10"
    path: Path | None = None

    def describe(self) -> str:
        return self.kind if self.path is None else f"{self.kind}:{self.path}"


def parse_data(text: str) -> DataSpec:
    """``synthetic`` or ``cifar10:PATH`` (PATH: the ``cifar-10-batches-py`` folder or its parent)."""
    kind, sep, rest = text.partition(":")
    kind = kind.strip().lower()
    if kind == "synthetic" and not sep:
        return DataSpec("synthetic")
    if kind == "cifar10" and rest:
        path = Path(rest).expanduser()
        if (path / "cifar-10-batches-py").is_dir():
            path = path / "cifar-10-batches-py"
        if not path.is_dir():
            raise ResdiagError(f"CIFAR-10 directory not found: {rest} (expected cifar-10-batches-py)")
        return DataSpec("cifar10", path)
    raise ResdiagError(f"unknown data {text!r}: use 'synthetic' or 'cifar10:PATH'")


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
    if tuple(input_shape) != (3, 32, 32):
        raise ResdiagError(f"CIFAR-10 images are 3,32,32 but the model takes {input_shape}")
    if num_classes != 10:
        raise ResdiagError(f"CIFAR-10 has 10 classes but the model has {num_classes}")
    images, labels = load_cifar10(spec.path)
    mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    for _ in range(count):
        idx = torch.randint(0, len(images), (batch_size,), generator=gen).numpy()
        x = (torch.from_numpy(images[idx]).float() / 255 - mean) / std
        yield x, torch.from_numpy(labels[idx])

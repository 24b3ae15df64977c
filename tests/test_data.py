"""The CIFAR-10 loader, on small files in the standard python format that the tests write."""

import os
import pickle

import numpy as np
import pytest
import torch

from resdiag.data import DataSpec, batches, load_cifar10, parse_data
from resdiag.errors import ResdiagError
from tests.support import write_cifar


def test_loads_standard_format(tmp_path):
    d = write_cifar(tmp_path)
    spec = parse_data(f"cifar10:{tmp_path}")  # the parent folder works too
    assert spec.path == d
    images, labels = load_cifar10(d)
    assert images.shape == (35, 3, 32, 32) and images.dtype == np.uint8 and labels.shape == (35,)
    with open(d / "data_batch_1", "rb") as fh:
        raw = pickle.load(fh, encoding="bytes")
    # channel-major: the first 1024 bytes are the red plane
    assert np.array_equal(images[0, 0].reshape(-1), raw[b"data"][0, :1024])
    x, y = next(batches(spec, (3, 32, 32), 10, 5, 1, seed=0))
    assert x.shape == (5, 3, 32, 32) and x.dtype == torch.float32 and y.shape == (5,)
    assert abs(float(x.mean())) < 1.5  # normalised


def test_truncated_and_missing_files_are_user_errors(tmp_path):
    d = write_cifar(tmp_path)
    raw = (d / "data_batch_3").read_bytes()
    (d / "data_batch_3").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ResdiagError, match="data_batch_3 is not a valid batch"):
        load_cifar10(d)
    os.remove(d / "data_batch_3")
    with pytest.raises(ResdiagError, match="missing"):
        load_cifar10(d)


def test_hostile_pickle_is_refused(tmp_path):
    d = write_cifar(tmp_path)

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch pwned",))

    (d / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(ResdiagError, match="not a valid batch"):
        load_cifar10(d)
    assert not os.path.exists("pwned")


def test_synthetic_is_seeded():
    a = next(batches(DataSpec("synthetic"), (3, 4, 4), 10, 2, 1, seed=5))
    b = next(batches(DataSpec("synthetic"), (3, 4, 4), 10, 2, 1, seed=5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("bad", ["cifar100:x", "cifar10:", "synthetic:x", "imagenet"])
def test_bad_specs(bad):
    with pytest.raises(ResdiagError):
        parse_data(bad)

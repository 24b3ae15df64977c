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


# ----------------------------------------------------------------------------- digits

def test_digits_split_is_fixed_stratified_and_disjoint():
    from sklearn.datasets import load_digits

    from resdiag.data import DIGITS_TEST_PER_CLASS, digits_split

    xtr, ytr = digits_split("train")
    xte, yte = digits_split("test")
    assert xtr.shape == (1397, 8, 8) and xte.shape == (400, 8, 8)
    assert np.bincount(yte).tolist() == [DIGITS_TEST_PER_CLASS] * 10
    # standardised with the training split's pixel mean and std
    assert abs(xtr.mean()) < 1e-5 and abs(xtr.std() - 1) < 1e-5
    # every original image lands in exactly one split with its own label (independent reference:
    # sklearn's own arrays; pixels 0 and 16 both occur, so the standardisation is undone from min/max)
    d = load_digits()
    both = np.concatenate([xtr, xte]).reshape(1797, 64)
    pixels = np.rint((both - both.min()) / (both.max() - both.min()) * 16).astype(int)
    ours = sorted(zip(map(tuple, pixels.tolist()), np.concatenate([ytr, yte]).tolist()))
    theirs = sorted(zip(map(tuple, d.data.astype(int).tolist()), d.target.tolist()))
    assert ours == theirs
    xtr2, _ = digits_split("train")
    assert np.array_equal(xtr, xtr2)


def test_digits_fit_the_model_input_shape():
    from resdiag.data import DataSpec, load_digits_tensors

    x1, y = load_digits_tensors(DataSpec("digits"), (1, 8, 8), 10)
    x3, _ = load_digits_tensors(DataSpec("digits"), (3, 16, 16), 10)
    xf, _ = load_digits_tensors(DataSpec("digits"), (64,), 10)
    assert x1.shape == (1397, 1, 8, 8) and x3.shape == (1397, 3, 16, 16) and xf.shape == (1397, 64)
    assert torch.equal(xf, x1.reshape(1397, 64)) and torch.equal(x3[:, 0], x3[:, 2])
    ref = torch.nn.functional.interpolate(x1, size=(16, 16), mode="bilinear", align_corners=False)
    assert torch.allclose(x3[:, :1], ref)
    with pytest.raises(ResdiagError, match="10 classes"):
        load_digits_tensors(DataSpec("digits"), (1, 8, 8), 7)
    with pytest.raises(ResdiagError, match="C,H,W or 64"):
        load_digits_tensors(DataSpec("digits"), (3, 8), 10)


def test_digits_batches_come_from_the_chosen_split_without_repeats():
    from resdiag.data import DataSpec

    x, y = next(batches(parse_data("digits"), (1, 8, 8), 10, 64, 1, seed=3))
    assert x.shape == (64, 1, 8, 8) and len({tuple(r.tolist()) for r in x.reshape(64, -1)}) == 64
    xt, _ = next(batches(DataSpec("digits", split="test"), (1, 8, 8), 10, 400, 1, seed=0))
    assert len({tuple(r.tolist()) for r in xt.reshape(400, -1)}) == 400
    assert DataSpec("digits", split="test").describe() == "digits (test split)"
    with pytest.raises(ResdiagError, match="larger than the digits test split"):
        next(batches(DataSpec("digits", split="test"), (1, 8, 8), 10, 401, 1, seed=0))


def test_digits_without_sklearn_is_one_clear_error(monkeypatch):
    import resdiag.data as data

    monkeypatch.setattr(data, "has_sklearn", lambda: False)
    assert data.default_data() == "synthetic"
    with pytest.raises(ResdiagError, match="scikit-learn"):
        data.parse_data("digits")

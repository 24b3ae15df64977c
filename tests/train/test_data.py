"""Training data: seeded order, DistributedSampler-style shards, He et al.'s augmentation."""

import pytest
import torch

from resdiag.data import parse_data
from resdiag.errors import ResdiagError
from resdiag.train.data import PAD, TrainSet, pad_crop_flip, synthetic_set, train_set
from tests.support import write_cifar


def test_pad_crop_flip_against_a_loop():
    x = torch.randn(5, 3, 6, 7)
    shifts = torch.tensor([[0, 0], [8, 8], [4, 4], [1, 7], [8, 0]])
    flips = torch.tensor([False, True, False, True, True])
    got = pad_crop_flip(x, shifts, flips)
    for i in range(5):
        padded = torch.nn.functional.pad(x[i], (PAD,) * 4)
        r, c = shifts[i].tolist()
        want = padded[:, r:r + 6, c:c + 7]
        want = want.flip(2) if flips[i] else want
        assert torch.equal(got[i], want)
    assert torch.equal(got[2], x[2])  # offset (4, 4) without a flip is the image itself


def test_shards_partition_the_global_batch_and_depend_only_on_step():
    data = synthetic_set(64, (3, 4, 4), 10, seed=1)
    whole = data.batch(5, 16)
    parts = [TrainSet(data.inputs, data.labels, 1).batch(5, 16, rank, 2) for rank in (0, 1)]
    assert torch.equal(torch.cat([p[0] for p in parts]), whole[0])
    assert torch.equal(torch.cat([p[1] for p in parts]), whole[1])
    assert not torch.equal(parts[0][0], parts[1][0])
    epoch = torch.cat([data.indices(s, 16) for s in range(4)])  # 64 / 16 = 4 steps per epoch
    assert sorted(epoch.tolist()) == list(range(64))
    assert not torch.equal(data.indices(4, 16), data.indices(0, 16))  # a new order each epoch


def test_synthetic_set_is_fixed_by_the_seed():
    a, b = synthetic_set(32, (3, 4, 4), 10, 0), synthetic_set(32, (3, 4, 4), 10, 0)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.inputs, synthetic_set(32, (3, 4, 4), 10, 1).inputs)


def test_cifar_is_normalised_and_augmented(tmp_path):
    write_cifar(tmp_path, n=8)
    spec = parse_data(f"cifar10:{tmp_path}")
    data = train_set(spec, (3, 32, 32), 10, seed=0, synthetic_size=0)
    assert len(data) == 40
    x, y = data.batch(0, 8, rank=1, world=2)
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32 and y.shape == (4,)
    plain = train_set(spec, (3, 32, 32), 10, seed=0, synthetic_size=0, augment=False).batch(0, 8, 1, 2)[0]
    assert not torch.equal(x, plain) and (x == 0).any()  # shifted crops bring in the zero padding
    with pytest.raises(ResdiagError, match="3,32,32"):
        train_set(spec, (3, 8, 8), 10, 0, 0)
    with pytest.raises(ResdiagError, match="10 classes"):
        train_set(spec, (3, 32, 32), 7, 0, 0)


def test_digits_training_set_is_the_training_split_unaugmented():
    from resdiag.data import digits_split

    data = train_set(parse_data("digits"), (1, 8, 8), 10, seed=0, synthetic_size=0)
    images, labels = digits_split("train")
    assert len(data) == 1397 and torch.equal(data.labels, torch.from_numpy(labels))
    x, y = data.batch(3, 32)
    idx = data.indices(3, 32)
    assert torch.equal(x[:, 0], torch.from_numpy(images)[idx]) and torch.equal(y, data.labels[idx])


def test_the_recipe_defaults_to_digits_when_sklearn_imports(monkeypatch):
    import resdiag.data
    from resdiag.train.config import TrainConfig

    assert TrainConfig().data == "digits"
    monkeypatch.setattr(resdiag.data, "has_sklearn", lambda: False)
    assert TrainConfig().data == "synthetic"

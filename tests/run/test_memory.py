import pytest

from resdiag.errors import ResdiagError
from resdiag.run import memory
from resdiag.run.gradflow import run_grad_flow
from resdiag.run.target import TargetSpec
from resdiag.zoo import resolve


def test_estimate_grows_with_depth_and_batch():
    small = memory.estimate_bytes(resolve("resnet20"), 32)
    assert memory.estimate_bytes(resolve("resnet56"), 32) > small
    assert memory.estimate_bytes(resolve("resnet20"), 64) > small
    assert memory.estimate_bytes(resolve("resnet20"), 256, backward=False) < memory.estimate_bytes(
        resolve("resnet20"), 256)


def test_ten_thousand_layers_at_batch_1024_is_refused_up_front(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device: 64 * 2**30)
    with pytest.raises(ResdiagError, match=r"needs about [\d,.]+ GiB .* only 64.0 GiB is free"):
        run_grad_flow(TargetSpec(arch=resolve("resnet", 9998)), batch_size=1024, device="cpu")


def test_absurd_depth_is_refused_before_building():
    with pytest.raises(ResdiagError, match="builds at most"):
        run_grad_flow(TargetSpec(arch=resolve("mlp", 10**7)), batch_size=2, device="cpu")


def test_a_huge_classifier_counts(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device: 8 * 2**30)
    with pytest.raises(ResdiagError, match="needs about"):
        run_grad_flow(TargetSpec(arch=resolve("mlp", 2, num_classes=10**8)), batch_size=2, device="cpu")

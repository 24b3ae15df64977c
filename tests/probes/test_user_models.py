"""Probes on models written the way people write them (in-place ops, modules called twice,
wrappers, mixed precision, torch.compile), against torch.autograd.grad."""

import pytest
import torch
from torch import nn

from examples.user_models import TinyResNet, TwiceCalled
from resdiag.probes.grad import GradientProbe
from resdiag.probes.layers import find_blocks, find_layers, unwrap
from tests.support import reference


def _check(model, x, y):
    with GradientProbe(model) as probe:
        loss, ref_w, ref_b = reference(unwrap(model), x, y)
        loss.backward()
        step = probe.step()
    for got, want in zip(step.weight_grad, ref_w, strict=True):
        assert got == pytest.approx(want, rel=1e-6)
    return step, ref_b


def test_inplace_relu_and_plus_equals_match_autograd():
    torch.manual_seed(0)
    model = TinyResNet().double()
    x, y = torch.randn(4, 3, 8, 8, dtype=torch.float64), torch.tensor([0, 1, 2, 3])
    assert [n for n, _ in find_blocks(model)] == ["layer1.0", "layer1.1", "layer1.2"]
    step, ref_b = _check(model, x, y)
    assert step.boundary_grad == pytest.approx(ref_b, rel=1e-6)


def test_module_called_twice_records_each_call():
    torch.manual_seed(0)
    model = TwiceCalled().double()
    x, y = torch.randn(3, 3, 8, 8, dtype=torch.float64), torch.tensor([0, 1, 2])
    step, ref_b = _check(model, x, y)
    assert step.boundary_names == ("block:in", "block:in#2", "block:out#2")
    assert len(ref_b) == 3
    assert step.boundary_grad == pytest.approx(ref_b, rel=1e-6)


def test_data_parallel_names_have_no_prefix():
    model = nn.DataParallel(TinyResNet())
    assert find_layers(model)[0].name == "conv1"
    assert find_blocks(model)[0][0] == "layer1.0"


def test_compiled_model_is_probed_through_its_original():
    model = TinyResNet()
    compiled = torch.compile(model, backend="eager")
    assert unwrap(compiled) is model
    x = torch.randn(2, 3, 8, 8)
    with GradientProbe(compiled) as probe:
        unwrap(compiled)(x).sum().backward()
        step = probe.step()
    assert len(step.boundary_grad) == 4 and all(g > 0 for g in step.weight_grad)


def test_bf16_autocast_norms_are_fp32_and_close():
    torch.manual_seed(0)
    model = TinyResNet()
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    with GradientProbe(model) as probe:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        step = probe.step()
    want = [float(layer.weight.grad.float().norm()) for layer in probe.layers]
    assert step.weight_grad == pytest.approx(want, rel=1e-5)
    assert all(isinstance(g, float) and g > 0 for g in step.boundary_grad)


def test_blocks_pattern_and_bad_pattern():
    from resdiag.errors import ResdiagError

    model = TinyResNet()
    assert [n for n, _ in find_blocks(model, r"layer1\.[02]")] == ["layer1.0", "layer1.2"]
    with pytest.raises(ResdiagError, match="matches no module"):
        find_blocks(model, "nothing")
    with pytest.raises(ResdiagError, match="not a valid regular expression"):
        find_blocks(model, "(")

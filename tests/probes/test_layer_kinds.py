"""Weights the layer finder used to drop: torch-parametrized weights (weight_norm, spectral_norm,
old-style weight_norm) and ConvTranspose1d/2d/3d. Rank against a float64 numpy SVD of the operator;
grad-flow's row against autograd on the trained parameter (docs/architectures.md, "weights")."""

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations

from resdiag.api import Monitor
from resdiag.metrics.rank import weight_spectrum
from resdiag.probes.layers import find_layers

WRAPS = {
    "weight_norm": (parametrizations.weight_norm, "parametrizations.weight.original1"),
    "spectral_norm": (parametrizations.spectral_norm, "parametrizations.weight.original"),
    "old_weight_norm": (nn.utils.weight_norm, "weight_v"),
}


def effective_np(lin: nn.Linear, wrap: str) -> np.ndarray:
    """The weight the forward uses, rebuilt in numpy from the parameters (and spectral_norm's u, v)."""
    if wrap == "spectral_norm":
        plist = lin.parametrizations.weight
        w = plist.original.detach().double().numpy()
        u, v = plist[0]._u.double().numpy(), plist[0]._v.double().numpy()
        return w / (u @ w @ v)
    if wrap == "weight_norm":
        g, v = (lin.parametrizations.weight.original0, lin.parametrizations.weight.original1)
    else:
        g, v = lin.weight_g, lin.weight_v
    g, v = g.detach().double().numpy(), v.detach().double().numpy()
    return g * v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("wrap", list(WRAPS))
def test_parametrized_weights_are_measured_and_their_gradient_is_the_originals(wrap):
    torch.manual_seed(0)
    fn, param = WRAPS[wrap]
    low = nn.Linear(16, 16)
    with torch.no_grad():
        low.weight.copy_(torch.randn(16, 1) @ torch.randn(1, 16))  # rank one
    model = nn.Sequential(nn.Linear(8, 16), fn(low), nn.ReLU(), nn.Linear(16, 3))
    model(torch.randn(4, 8))  # old-style weight_norm recomputes .weight in the forward
    (layer,) = [x for x in find_layers(model) if x.name == "1"]
    assert (layer.kind, layer.param) == ("linear", param)
    if wrap == "spectral_norm":
        u = model[1].parametrizations.weight[0]._u.clone()
    got = weight_spectrum(layer.effective())
    if wrap == "spectral_norm":  # reading the weight does not advance the power iteration
        assert torch.equal(u, model[1].parametrizations.weight[0]._u)
    s = np.linalg.svd(effective_np(model[1], wrap), compute_uv=False)
    assert got.spectral_norm == pytest.approx(s[0], rel=1e-6)
    assert got.numerical_rank == 1 and got.erank == pytest.approx(1.0, abs=1e-5)
    # grad-flow's row: ||dE/d(original)|| of the step's backward, from .grad, against autograd.grad
    x, y = torch.randn(6, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    monitor = Monitor(model, every=1)
    model.eval()  # spectral_norm: the same sigma in both passes
    with monitor.record(0) as rec:
        nn.functional.cross_entropy(model(x), y).backward()
    (want,) = torch.autograd.grad(nn.functional.cross_entropy(model(x), y), [layer.weight])
    (row,) = [r for r in rec.result.layers if r.name == "1"]
    assert row.grad_norm == pytest.approx(math.sqrt(float(want.double().square().sum())), rel=1e-5)


@pytest.mark.parametrize("cls, kernel", [(nn.ConvTranspose1d, (3,)), (nn.ConvTranspose2d, (3, 2)),
                                         (nn.ConvTranspose3d, (2, 2, 2))])
def test_conv_transpose_is_the_map_from_an_input_pixel_to_its_output_patch(cls, kernel):
    """ConvTranspose (in -> out) adds W[i, o, k] x_i into output position p + k: per input pixel the
    map is the (out * k) x in matrix read off a 1-pixel input, whose singular values are those of
    weight.reshape(in, -1) (the flat convention)."""
    torch.manual_seed(1)
    conv = cls(5, 4, kernel, bias=False).double()
    model = nn.Sequential(conv)
    (layer,) = find_layers(model)
    assert layer.kind == "conv_transpose" and layer.fan_out == 4
    pixel = (1,) * len(kernel)
    jac = torch.autograd.functional.jacobian(lambda v: conv(v.reshape(1, 5, *pixel)).flatten(), torch.zeros(5,
                                                                                   dtype=torch.float64))
    s = np.linalg.svd(jac.numpy(), compute_uv=False)  # (out * prod(k)) x in
    got = weight_spectrum(layer.effective())
    assert got.spectral_norm == pytest.approx(s[0], rel=1e-12)
    p = s / s.sum()
    assert got.erank == pytest.approx(math.exp(-(p * np.log(p)).sum()), rel=1e-12)
    assert got.numerical_rank == min(4 * math.prod(kernel), 5)

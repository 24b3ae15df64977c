"""BN re-estimation and layer responses against hand-computed statistics (float64)."""

import pytest
import torch

from resdiag.claims.evaluate import Split, bn_responses, error, reestimate_bn
from resdiag.zoo import build, resolve


def _net():
    torch.manual_seed(0)
    model = build(resolve("resnet", 8, width=0.25, input_shape=(1, 8, 8)))
    x = torch.randn(40, 1, 8, 8)
    return model, Split(x, torch.randint(0, 10, (40,)))


def _bn_inputs(model, x, train_mode):
    seen = {}
    bns = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    hs = [m.register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, (i[0].double(), o.double())))
          for n, m in bns.items()]
    model.train(train_mode)
    with torch.no_grad():
        model(x)
    for h in hs:
        h.remove()
    return bns, seen


def test_reestimated_statistics_are_the_mean_and_variance_of_each_input():
    model, split = _net()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.fill_(5.0)  # stale statistics that must be replaced
    bns, seen = _bn_inputs(model, split.inputs, train_mode=True)
    reestimate_bn(model, split)
    assert not model.training
    for name, m in bns.items():
        x = seen[name][0]
        torch.testing.assert_close(m.running_mean.double(), x.mean((0, 2, 3)), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(m.running_var.double(), x.var((0, 2, 3), unbiased=True), rtol=1e-4, atol=1e-6)
        assert m.momentum == 0.1  # restored


def test_responses_are_the_std_of_every_block_bn_output_in_eval_mode():
    model, split = _net()
    reestimate_bn(model, split)
    got = bn_responses(model, split)
    bns, seen = _bn_inputs(model, split.inputs, train_mode=False)
    want = []
    for name in bns:  # every BN of the residual blocks (stage*.k.branch.bn*), not the stem's
        if not name.startswith("stage"):
            continue
        m, x = bns[name], seen[name][0]
        y = (x - m.running_mean.double().view(1, -1, 1, 1)) / torch.sqrt(m.running_var.double().view(1, -1, 1, 1) + m.eps)
        y = y * m.weight.double().view(1, -1, 1, 1) + m.bias.double().view(1, -1, 1, 1)
        want.append(y.std().item())
    assert len(got) == len(want) > 0
    assert got == pytest.approx(want, rel=1e-5)
    pred = model(split.inputs).argmax(1)
    assert error(model, split) == (pred != split.labels).double().mean().item()

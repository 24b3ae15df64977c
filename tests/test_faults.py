"""Faults: Ctrl-C, a model that fails mid-run, non-finite numbers. The model and the output files
are left as they were."""


import pytest
import torch
from torch import nn

import resdiag.run.gradflow as gradflow_mod
from resdiag.run.gradflow import grad_flow
from resdiag.run.inputs import InputSpec
from resdiag.run.rank import rank
from resdiag.run.target import TargetSpec, build_target
from resdiag.zoo import build, resolve
from tests.helpers import invoke


def test_ctrl_c_exits_130_and_leaves_outputs_untouched(tmp_path, monkeypatch):
    out = tmp_path / "o.json"
    out.write_text("old\n")

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(gradflow_mod, "build_for", interrupted)
    code, err = invoke(["grad-flow", "--arch", "resnet8", "--device", "cpu", "--json", str(out)])
    assert code == 130 and err == "resdiag: interrupted\n"
    assert out.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["o.json"]


class FailsOnSecondCall(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = build(resolve("resnet8", width=0.25, input_shape=(3, 8, 8)))
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("boom")
        return self.net(x)


@pytest.mark.parametrize("probe", ["grad-flow", "rank"])
def test_a_failed_run_leaves_the_model_as_found(probe):
    model = FailsOnSecondCall()
    model.eval()
    model.net.stage2.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    target = build_target(TargetSpec(module=model, inputs=InputSpec(shape=(3, 8, 8))))  # call 1
    with pytest.raises(RuntimeError, match="boom"):
        if probe == "grad-flow":
            grad_flow(target, batches=3, batch_size=4, device="cpu")
        else:
            rank(target, batch_size=4, device="cpu")
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert [m.training for m in model.modules()] == modes
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    assert all(not p._backward_hooks for p in model.parameters())
    assert all(p.grad is None for p in model.parameters())


def test_unexpected_error_is_one_line_exit_2(tmp_path, monkeypatch):
    def bug(*a, **k):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(gradflow_mod, "build_for", bug)
    code, err = invoke(["grad-flow", "--arch", "resnet8", "--device", "cpu"])
    assert code == 2 and err.count("\n") == 1 and "unexpected ZeroDivisionError: a bug" in err

"""What a grad-flow verdict judged (its scope), and gradients that never arrive.

- A boundary recorded in the forward that gets no gradient (a ``detach()`` in the residual stream) has
  ||dE/dx_l|| = 0 exactly, as autograd's None says, in both probes and the Monitor: it was NaN in
  ``GradientProbe`` (read as "exploding") and silently dropped by the Monitor (read as "healthy").
- Layers frozen by the user are named in the verdict's scope and raise no finding; trainable layers
  that get no gradient raise ``evidence.unreached`` (inconclusive), never a silent "healthy".
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from examples.user_models import DetachedStream, TinyResNet, frozen_backbone, unused_head
from resdiag.api import Monitor, TargetSpec, run_grad_flow
from resdiag.probes.grad import GradientProbe
from resdiag.results import GradFlowResult, Scope
from resdiag.run.inputs import InputSpec
from tests.helpers import invoke_out


def batch(n: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)


def reference_boundaries(model, x, y) -> list[float]:
    """||dE/dx_l|| by autograd for every block input that requires grad and the last block's output;
    a boundary the loss does not depend on (autograd's None) is 0."""
    seen = []
    handles = [b.register_forward_pre_hook(lambda m, a: seen.append(a[0])) for b in model.layer1]
    handles.append(model.layer1[-1].register_forward_hook(lambda m, a, out: seen.append(out)))
    loss = nn.functional.cross_entropy(model(x), y)
    for h in handles:
        h.remove()
    seen = [t for t in seen if t.requires_grad]
    grads = torch.autograd.grad(loss, seen, allow_unused=True)
    return [0.0 if g is None else float(g.double().norm()) for g in grads]


def probe_boundaries(model, x, y, own: bool) -> tuple[float, ...]:
    with GradientProbe(model, own_backward=own, weights_from="grad" if own else "hook") as probe:
        loss = nn.functional.cross_entropy(model(x), y)
        probe.backward(loss) if own else loss.backward()
        step = probe.step()
    return step.boundary_grad


@pytest.mark.parametrize("path", ["own_backward", "hooks", "monitor"])
def test_a_boundary_cut_from_the_loss_reads_exactly_zero(path):
    torch.manual_seed(0)
    model = DetachedStream(blocks=4)
    x, y = batch()
    expected = reference_boundaries(model, x, y)
    assert expected[:2] == [0.0, 0.0] and all(v > 0 for v in expected[2:])  # the case is what it says
    if path == "monitor":
        monitor = Monitor(model, every=1)
        with monitor.record(0) as rec:
            nn.functional.cross_entropy(model(x), y).backward()
        got = rec.result.boundaries
        got = tuple(b.grad_norm for b in got)
        assert rec.result.verdict.status == "vanishing"
    else:
        got = probe_boundaries(model, x, y, own=path == "own_backward")
    assert got[:2] == (0.0, 0.0)
    assert got[2:] == pytest.approx(expected[2:], rel=1e-6)


def run(model) -> GradFlowResult:
    return run_grad_flow(TargetSpec(module=model, inputs=InputSpec(shape=(3, 32, 32))), batches=2,
                         batch_size=8, device="cpu")


def test_a_detached_stream_is_vanishing_not_exploding():
    torch.manual_seed(0)
    result = run(DetachedStream(blocks=4))
    rules = {f.rule for f in result.verdict.findings}
    assert result.verdict.status == "vanishing" and "zero" in rules and "non_finite" not in rules
    assert [b.grad_norm for b in result.boundaries[:2]] == [0.0, 0.0]
    # the stem and the first two blocks' convs are trainable and get nothing: named, not skipped
    assert "evidence.unreached" in rules
    assert result.verdict.scope.no_gradient == ("conv1", "layer1.0.conv1", "layer1.0.conv2",
                                                "layer1.1.conv1", "layer1.1.conv2")


def test_a_frozen_backbone_is_judged_on_the_trainable_part_and_says_so():
    torch.manual_seed(0)
    model = frozen_backbone()
    result = run(model)
    assert result.verdict.status == "healthy" and result.verdict.findings == ()
    frozen = ("conv1", "layer1.0.conv1", "layer1.0.conv2", "layer1.1.conv1", "layer1.1.conv2")
    # the inputs of the first three blocks come out of frozen layers: no gradient, no boundary
    assert result.verdict.scope == Scope(layers=10, judged=5, frozen=frozen, no_gradient=(), blocks=4,
                                         boundaries=2, inert_boundaries=3)
    assert [x.name for x in result.layers if x.frozen] == list(frozen)
    assert all(math.isnan(x.grad_norm) for x in result.layers if x.frozen)
    assert "judged on 5 of 10 conv/linear layers" in result.verdict.scope.line()


def test_an_unused_trainable_layer_is_inconclusive_until_frozen():
    torch.manual_seed(0)
    model = unused_head()
    result = run(model)
    assert result.verdict.status == "inconclusive"
    (f,) = [f for f in result.verdict.findings if f.rule == "evidence.unreached"]
    assert "aux" in f.message and f.value == 1.0
    model.aux.requires_grad_(False)
    result = run(model)
    assert result.verdict.status == "healthy" and result.verdict.scope.frozen == ("aux",)


def test_the_scope_round_trips_through_json_and_is_silent_when_everything_was_judged():
    torch.manual_seed(0)
    result = run(DetachedStream(blocks=4))
    back = GradFlowResult.from_dict(json.loads(result.to_json()))
    assert back.verdict == result.verdict
    assert [(a.name, a.frozen, a.has_grad) for a in back.layers] == \
        [(a.name, a.frozen, a.has_grad) for a in result.layers]
    full = run(TinyResNet(blocks=4))
    assert full.verdict.scope == Scope(layers=10, judged=10, blocks=4, boundaries=5)
    assert full.verdict.scope.line() == ""


def test_older_results_without_a_scope_still_read():
    torch.manual_seed(0)
    d = json.loads(run(frozen_backbone()).to_json())
    del d["verdict"]["scope"]
    for x in d["layers"]:
        del x["frozen"]
    back = GradFlowResult.from_dict(d)
    assert back.verdict.scope is None and not any(x.frozen for x in back.layers)


def test_the_monitor_matches_grad_flow_on_a_frozen_backbone():
    """The Monitor records no boundary where nothing can carry a gradient (it used to keep them in its
    list and drop them only for want of a norm) and states the same scope."""
    torch.manual_seed(0)
    model = frozen_backbone()
    x, y = batch()
    monitor = Monitor(model, every=1)
    with monitor.record(0) as rec:
        nn.functional.cross_entropy(model(x), y).backward()
    own = probe_boundaries(model, x, y, own=True)
    assert tuple(b.grad_norm for b in rec.result.boundaries) == pytest.approx(own, rel=1e-12)
    assert [b.name for b in rec.result.boundaries] == ["layer1.3:in", "layer1.3:out"]
    assert rec.result.verdict.status == "healthy"
    assert rec.result.verdict.scope.frozen[0] == "conv1" and rec.result.verdict.scope.judged == 5


def test_cli_prints_the_scope_and_frozen_rows(tmp_path):
    out = tmp_path / "f.json"
    code, stdout, _ = invoke_out(["grad-flow", "--model", "examples.user_models:frozen_backbone",
                                  "--input-shape", "3,32,32", "--batches", "1", "--batch-size", "4",
                                  "--json", str(out)])
    assert code == 0
    flat = " ".join(stdout.replace("│", " ").split())  # the panel wraps lines inside its borders
    assert "frozen (requires_grad=False), not judged: conv1" in flat
    assert "│    frozen │" in stdout
    d = json.loads(out.read_text())
    assert d["verdict"]["scope"]["judged"] == 5 and d["layers"][0]["frozen"] is True


def test_cli_detached_stream_is_vanishing_under_strict(tmp_path):
    code, stdout, _ = invoke_out(["grad-flow", "--model", "examples.user_models:detached_stream",
                                  "--input-shape", "3,32,32", "--batches", "1", "--batch-size", "4",
                                  "--strict"])
    assert code == 1 and "VANISHING" in stdout and "non_finite" not in stdout


def test_rank_json_has_no_scope_key():
    from resdiag.api import run_rank

    torch.manual_seed(0)
    result = run_rank(TargetSpec(module=frozen_backbone(), inputs=InputSpec(shape=(3, 32, 32))),
                      batch_size=8, device="cpu")
    assert "scope" not in result.to_dict()["verdict"]


# -- model calls the backward never reached: left out, not zeros (review of the first version) ----

def monitor_record(model, body):
    monitor = Monitor(model, every=1)
    with monitor.record(0) as rec:
        body()
    return rec


@pytest.mark.parametrize("case", ["pseudo_labels_first", "metrics_forward_after", "skipped_micro_batch"])
def test_a_forward_never_backpropagated_is_left_out(case):
    torch.manual_seed(0)
    model = TinyResNet(blocks=4)
    x, y = batch()
    expected = reference_boundaries(model, x, y)

    def body():
        if case == "pseudo_labels_first":
            model(x).detach().argmax(1)  # with autograd on, never backpropagated
        loss = nn.functional.cross_entropy(model(x), y)
        if case == "metrics_forward_after":
            (model(x).argmax(1) == y).float().mean()
        if case == "skipped_micro_batch":  # a first micro-batch whose loss was not used
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()

    rec = monitor_record(model, body)
    assert rec.result.verdict.status == "healthy"
    assert [b.name for b in rec.result.boundaries] == ["layer1.0:in", "layer1.1:in", "layer1.2:in",
                                                       "layer1.3:in", "layer1.3:out"]
    assert [b.grad_norm for b in rec.result.boundaries] == pytest.approx(expected, rel=1e-6)
    model.zero_grad(set_to_none=True)
    for own in (True, False):  # grad-flow's probe, both paths
        with GradientProbe(model, own_backward=own, weights_from="grad" if own else "hook") as probe:
            model(x).detach()
            loss = nn.functional.cross_entropy(model(x), y)
            probe.backward(loss) if own else loss.backward()
            step = probe.step()
        assert step.boundary_names == ("layer1.0:in", "layer1.1:in", "layer1.2:in", "layer1.3:in",
                                       "layer1.3:out")
        assert step.boundary_grad == pytest.approx(expected, rel=1e-6)


def test_the_monitor_counts_calls_of_an_inner_model_the_root_never_runs():
    """Lightning: the Monitor holds the LightningModule, whose training_step calls ``self.net(x)``;
    the LightningModule's own forward never runs, yet each call of ``net`` is one model call."""
    torch.manual_seed(0)

    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = TinyResNet(blocks=4)

    wrapper = Wrapper()
    x, y = batch()
    expected = reference_boundaries(wrapper.net, x, y)

    def body():
        wrapper.net(x).detach()
        nn.functional.cross_entropy(wrapper.net(x), y).backward()

    rec = monitor_record(wrapper, body)
    assert rec.result.verdict.status == "healthy"
    assert [b.grad_norm for b in rec.result.boundaries] == pytest.approx(expected, rel=1e-6)


def test_a_record_without_backward_is_inconclusive_not_exploding():
    torch.manual_seed(0)
    model = TinyResNet(blocks=4)
    x, y = batch()
    monitor = Monitor(model, every=1)
    with monitor.record(0) as rec:
        loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert rec.result.verdict.status == "inconclusive" and rec.result.boundaries == ()
    assert "non_finite" not in {f.rule for f in rec.result.verdict.findings}


def test_blocks_called_with_an_unread_keyword_keep_the_blocks_hint():
    class KwBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(8, 8, 3, padding=1)

        def forward(self, feats):
            return feats + torch.relu(self.conv(feats))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, padding=1)
            self.blocks = nn.ModuleList([KwBlock() for _ in range(3)])
            self.fc = nn.Linear(8, 10)

        def forward(self, x):
            x = self.stem(x)
            for b in self.blocks:
                x = b(feats=x)
            return self.fc(x.mean((2, 3)))

    torch.manual_seed(0)
    result = run_grad_flow(TargetSpec(module=Net(), inputs=InputSpec(shape=(3, 16, 16))), batches=1,
                           batch_size=4, device="cpu")
    (f,) = [f for f in result.verdict.findings if f.rule == "evidence.boundaries"]
    assert "--blocks REGEX" in f.message and result.verdict.scope.inert_boundaries == 0


@pytest.mark.parametrize("flush_bytes", [0, 64 << 20])
def test_the_same_numbers_whether_or_not_the_norms_were_flushed_early(monkeypatch, flush_bytes):
    import resdiag.probes.boundaries as boundaries_mod

    monkeypatch.setattr(boundaries_mod, "_FLUSH_BYTES", flush_bytes)
    torch.manual_seed(0)
    model = DetachedStream(blocks=4)
    x, y = batch()
    expected = reference_boundaries(model, x, y)
    got = probe_boundaries(model, x, y, own=False)
    assert got[:2] == (0.0, 0.0) and got[2:] == pytest.approx(expected[2:], rel=1e-6)


def test_check_json_writes_no_scope_for_rank_verdicts():
    from resdiag.check.result import CheckResult, ModelRun
    from resdiag.results import Verdict

    run = ModelRun("m", {}, {}, {"rank": Verdict("healthy"),
                                "grad-flow": Verdict("healthy", (), Scope(layers=2, judged=2))})
    d = CheckResult("0", "t", 0, "cpu", 1, (run,), ()).to_dict()
    assert d["models"][0]["verdicts"]["rank"] == {"status": "healthy", "findings": []}
    assert d["models"][0]["verdicts"]["grad-flow"]["scope"]["layers"] == 2


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_a_half_precision_model_gets_its_synthetic_images_in_its_dtype(dtype):
    """A bfloat16/float16 model from --model: the float32 synthetic images are cast to its dtype
    (was: 'mat1 and mat2 must have the same dtype', exit 2)."""
    torch.manual_seed(0)
    model = TinyResNet(blocks=2).to(dtype)
    result = run_grad_flow(TargetSpec(module=model, inputs=InputSpec(shape=(3, 8, 8))), batches=1,
                           batch_size=4, device="cpu", mode="eval")
    assert all(math.isfinite(b.grad_norm) and b.grad_norm > 0 for b in result.boundaries)
    assert result.verdict.status in ("healthy", "vanishing", "exploding")

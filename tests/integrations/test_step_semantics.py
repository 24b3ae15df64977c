"""A recorded step is one optimizer step: accumulation, checkpointing and loss scaling (docs/api.md,
"Training stacks"). References: one backward of the whole batch through torch.autograd.grad."""

import copy
import math
import warnings

import pytest
import torch
from torch import nn

from resdiag.api import Monitor
from tests.integrations.problems import ResNetMLP, batch, reference


def accumulate(monitor, model, x, y, k, step=0):
    """One optimizer step of k micro-batches, each loss divided by k (the usual recipe)."""
    with monitor.record(step) as rec:
        for xm, ym in zip(x.chunk(k), y.chunk(k)):
            (nn.functional.cross_entropy(model(xm), ym) / k).backward()
    return rec


def check_against(rec, model, weights, bounds, rel=1e-5):
    assert rec.param_norms.keys() == weights.keys()
    for name, want in weights.items():
        assert rec.param_norms[name] == pytest.approx(want, rel=rel), name
    layer = {row.name: row.grad_norm for row in rec.result.layers}
    assert layer["stem"] == pytest.approx(weights["stem.weight"], rel=rel)
    assert layer["blocks.3.fc2"] == pytest.approx(weights["blocks.3.fc2.weight"], rel=rel)
    got = [b.grad_norm for b in rec.result.boundaries]
    assert [b.name for b in rec.result.boundaries] == [f"blocks.{i}:in" for i in range(4)] + ["blocks.3:out"]
    assert got == pytest.approx(bounds, rel=rel)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_accumulation_equals_one_big_batch(k):
    torch.manual_seed(0)
    model = ResNetMLP()
    ref_model = copy.deepcopy(model)
    x, y = batch(12)
    weights, bounds = reference(ref_model, x, y, list(ref_model.blocks))
    monitor = Monitor(model, every=1)
    rec = accumulate(monitor, model, x, y, k)
    assert rec.micro_batches == k and len(monitor.history) == 1
    check_against(rec, model, weights, bounds)
    for name, p in model.named_parameters():  # the weight rows are what the optimizer applies
        assert rec.param_norms[name] == pytest.approx(float(p.grad.double().norm()), rel=1e-9)


def test_one_record_per_optimizer_step_numbered_by_it():
    torch.manual_seed(0)
    model = ResNetMLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = Monitor(model, every=2)
    for opt_step in range(5):
        x, y = batch(8, seed=opt_step)
        accumulate(monitor, model, x, y, k=2, step=opt_step)
        opt.step()
        opt.zero_grad()
    assert [r.step for r in monitor.history] == [0, 2, 4]
    assert {r.micro_batches for r in monitor.history} == {2}


@pytest.mark.parametrize("mode", ["reentrant", "non_reentrant", "sequential"])
@pytest.mark.parametrize("k", [1, 2])
def test_checkpointing_adds_no_boundary(mode, k):
    torch.manual_seed(0)
    model = ResNetMLP()
    ref_model = copy.deepcopy(model)
    model.ckpt = mode
    x, y = batch(8)
    weights, bounds = reference(ref_model, x, y, list(ref_model.blocks))
    plain = accumulate(Monitor(ref_model, every=1), ref_model, x, y, k)
    rec = accumulate(Monitor(model, every=1), model, x, y, k)
    check_against(rec, model, weights, bounds)
    assert all(math.isfinite(b.grad_norm) for b in rec.result.boundaries)
    # a healthy model under checkpointing gets the verdict it gets without
    assert rec.result.verdict.status == plain.result.verdict.status != "exploding"


@pytest.mark.parametrize("reentrant", [True, False])
def test_hf_gradient_checkpointing(reentrant):
    """transformers 5 checkpoints inside each layer (the layer's own hooks run once); this holds
    the Monitor to that (a regression test: it also passes without resdiag's recompute rule)."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=64, n_embd=32, n_layer=3, n_head=2, n_positions=16,
                                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = transformers.GPT2LMHeadModel(cfg).train()
    ref_model = copy.deepcopy(model)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": reentrant})
    ids = torch.randint(0, 64, (4, 12), generator=torch.Generator().manual_seed(1))
    recs = []
    for m in (ref_model, model):
        with Monitor(m, every=1).record(0) as rec:
            m(input_ids=ids, labels=ids).loss.backward()
        recs.append(rec)
    names = [b.name for b in recs[1].result.boundaries]
    assert names == [f"transformer.h.{i}:in" for i in range(3)] + ["transformer.h.2:out"]
    assert names == [b.name for b in recs[0].result.boundaries]
    got = [b.grad_norm for b in recs[1].result.boundaries]
    assert got == pytest.approx([b.grad_norm for b in recs[0].result.boundaries], rel=1e-5)
    assert recs[1].param_norms == pytest.approx(recs[0].param_norms, rel=1e-5)
    assert recs[1].result.verdict.status == recs[0].result.verdict.status != "exploding"


def scaled_step(monitor, model, opt, scaler, x, y, step, pass_scaler):
    with monitor.record(step, **({"scaler": scaler} if pass_scaler else {})) as rec:
        with torch.autocast("cpu", dtype=torch.float16):
            loss = nn.functional.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
    scaled = {n: p.grad.double().norm().item() for n, p in model.named_parameters()}
    scale = scaler.get_scale()
    scaler.step(opt)
    scaler.update()
    opt.zero_grad()
    return rec, scaled, scale


@pytest.mark.parametrize("where", ["monitor", "record"])
def test_gradscaler_norms_are_unscaled_through_a_backoff(where):
    torch.manual_seed(0)
    model = ResNetMLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    # 2**30: fp16 activation gradients overflow at the first step, the scaler backs off
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**30, growth_interval=1000)
    monitor = Monitor(model, every=1, scaler=scaler if where == "monitor" else None)
    scales = []
    for step in range(24):
        x, y = batch(8, seed=step)
        ref = copy.deepcopy(model)
        rec, scaled, scale = scaled_step(monitor, model, opt, scaler, x, y, step, where == "record")
        scales.append(scale)
        assert rec.loss_scale == scale
        for name, v in scaled.items():  # p.grad / S: the gradient the optimizer would apply
            assert rec.param_norms[name] == pytest.approx(v / scale, rel=1e-9, nan_ok=True)
        if math.isfinite(sum(scaled.values())):
            # the unscaled loss's own gradient (same autocast): boundary norms carry no scale
            xs = []
            hs = [b.register_forward_pre_hook(lambda m, a: xs.append(a[0])) for b in ref.blocks]
            with torch.autocast("cpu", dtype=torch.float16):
                loss = nn.functional.cross_entropy(ref(x), y)
            want = [float(g.double().norm()) for g in torch.autograd.grad(loss, xs)]
            for h in hs:
                h.remove()
            got = [b.grad_norm for b in rec.result.boundaries][:4]
            assert got == pytest.approx(want, rel=2e-2)  # fp16 rounding of the unscaled backward
    assert scales[0] > scales[-1]  # the scaler backed off at least once ...
    assert len(set(scales)) > 2    # ... and the records followed every scale it used
    assert math.isfinite(sum(monitor.history[-1].param_norms.values()))


def test_unscale_before_end_is_not_divided_twice():
    torch.manual_seed(0)
    model = ResNetMLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    monitor = Monitor(model, every=1, scaler=scaler)
    x, y = batch(8)
    with monitor.record(0) as rec:
        with torch.autocast("cpu", dtype=torch.float16):
            loss = nn.functional.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)  # as Lightning and HF Trainer do before their optimizer-step hooks
    for name, p in model.named_parameters():
        assert rec.param_norms[name] == pytest.approx(float(p.grad.double().norm()), rel=1e-9)
    assert rec.result.layers[0].grad_norm == pytest.approx(float(model.stem.weight.grad.double().norm()))


def test_parameters_are_read_from_the_model_as_it_is_at_each_step():
    """The per-parameter norms (Lightning's keys) walk the model on every recorded step: a head
    replaced after the Monitor was made (fine-tuning a new classifier) is read, the old one not."""
    torch.manual_seed(0)
    model = ResNetMLP()
    monitor = Monitor(model, every=1)
    x, y = batch(6)
    model.head = nn.Linear(16, 3)
    with monitor.record(0) as rec:
        nn.functional.cross_entropy(model(x), y % 3).backward()
    assert rec.param_norms["head.weight"] == pytest.approx(float(model.head.weight.grad.norm()), rel=1e-6)
    bias = rec.lightning()["grad_2.0_norm/head.bias"]
    assert bias == pytest.approx(float(model.head.bias.grad.norm()), rel=1e-6)


def test_layers_and_blocks_follow_modules_replaced_after_the_monitor_was_made():
    """A head and a block replaced between recordings: the rows and boundaries are those of the model
    as it is (against autograd on a copy), none of the modules it no longer has, and its parameter
    count is the new one."""
    torch.manual_seed(0)
    model = ResNetMLP()
    monitor = Monitor(model, every=1)
    x, y = batch(6)
    with monitor.record(0) as first:
        nn.functional.cross_entropy(model(x), y).backward()
    model.zero_grad()
    model.head, model.blocks[2] = nn.Linear(16, 3), type(model.blocks[2])(16)
    ref_model = copy.deepcopy(model)
    weights, bounds = reference(ref_model, x, y % 3, list(ref_model.blocks))
    with monitor.record(1) as rec:
        nn.functional.cross_entropy(model(x), y % 3).backward()
    rows = {row.name: row.grad_norm for row in rec.result.layers}
    assert len(rows) == len(first.result.layers) == 10
    for name in ("head", "blocks.2.fc1", "blocks.2.fc2", "stem"):
        assert rows[name] == pytest.approx(weights[f"{name}.weight"], rel=1e-5), name
    assert all(math.isfinite(v) for v in rows.values())  # no row of a module the model lost
    assert [b.grad_norm for b in rec.result.boundaries] == pytest.approx(bounds, rel=1e-5)
    assert rec.result.model.parameters == sum(p.numel() for p in model.parameters())
    assert rec.result.model.parameters != first.result.model.parameters


def test_layers_found_once_while_the_modules_stay(monkeypatch):
    import resdiag.monitor as monitor_module

    calls = []
    found = monitor_module.find_layers
    monkeypatch.setattr(monitor_module, "find_layers", lambda m: calls.append(1) or found(m))
    model = ResNetMLP()
    monitor = Monitor(model, every=1)
    x, y = batch(4)
    for step in range(3):
        with monitor.record(step):
            nn.functional.cross_entropy(model(x), y).backward()
    assert len(calls) == 1
    model.head = nn.Linear(16, 5)
    with monitor.record(3):
        nn.functional.cross_entropy(model(x), y).backward()
    assert len(calls) == 2


def test_a_blocks_pattern_the_changed_model_no_longer_matches_is_an_error():
    from resdiag.errors import ResdiagError

    model = ResNetMLP()
    monitor = Monitor(model, every=1, blocks=r"blocks\.3")
    del model.blocks[3]
    with pytest.raises(ResdiagError, match="matches no module"):
        with monitor.record(0):
            pass
    assert not monitor.is_open


# -- which backward passes a record reads -------------------------------------------------------

@pytest.mark.parametrize("extra", ["logging_autograd_grad", "gradient_penalty"])
def test_an_autograd_grad_call_inside_the_record_is_not_a_training_backward(extra):
    """A tensor hook fires in every backward that crosses x_l, also in ``torch.autograd.grad``. Only
    the backward passes that accumulate into .grad are the step's: a logging ``autograd.grad`` adds
    nothing, and a gradient penalty counts through the loss that contains it (its final backward)."""
    torch.manual_seed(0)
    model = ResNetMLP()
    x, y = batch(8)
    x.requires_grad_(True)
    xs = []
    handles = [b.register_forward_pre_hook(lambda m, a: xs.append(a[0])) for b in model.blocks]
    handles.append(model.blocks[-1].register_forward_hook(lambda m, a, o: xs.append(o)))

    def loss_of(out):
        loss = nn.functional.cross_entropy(out, y)
        if extra == "gradient_penalty":  # R1: ||dE/dx||^2 of the input, differentiated again
            (g,) = torch.autograd.grad(loss, x, create_graph=True)
            loss = loss + g.square().sum()
        return loss

    ref_model = copy.deepcopy(model)
    loss = loss_of(ref_model(x))
    for h in handles:
        h.remove()
    expected = [float(g.double().norm()) for g in torch.autograd.grad(loss, xs)]
    monitor = Monitor(model, every=1)
    with monitor.record(0) as rec:
        loss = loss_of(model(x))
        if extra == "logging_autograd_grad":
            torch.autograd.grad(loss, x, retain_graph=True)
        loss.backward()
    assert rec.micro_batches == 1
    assert [b.grad_norm for b in rec.result.boundaries] == pytest.approx(expected, rel=1e-6)


def test_weight_rows_are_this_steps_gradient_not_a_zero_or_stale_grad():
    """zero_grad(set_to_none=False) leaves a .grad of zeros on a head this step never called, and a
    layer frozen since an earlier step keeps its old .grad: neither is a gradient of this step."""
    torch.manual_seed(0)
    model = ResNetMLP()
    model.aux = nn.Linear(16, 5)
    x, y = batch(8)
    (model.head(model.stem(x)).sum() + model.aux(model.stem(x)).sum()).backward()  # every .grad set
    model.zero_grad(set_to_none=False)
    model.stem.weight.grad += 1.0  # a stale gradient, then the stem is frozen
    model.stem.requires_grad_(False)
    monitor = Monitor(model, every=1)
    with monitor.record(0) as rec:
        nn.functional.cross_entropy(model(x), y).backward()
    rows = {layer.name: layer for layer in rec.result.layers}
    assert not rows["aux"].has_grad and math.isnan(rows["aux"].grad_norm)
    assert rows["stem"].frozen and not rows["stem"].has_grad
    scope = rec.result.verdict.scope
    assert scope.frozen == ("stem",) and scope.no_gradient == ("aux",)
    assert rec.result.verdict.status == "inconclusive"  # aux: evidence.unreached, not "zero"
    assert rows["head"].grad_norm == pytest.approx(float(model.head.weight.grad.double().norm()), rel=1e-9)


def test_one_scaler_for_two_optimizers_unscales_by_the_monitored_models_optimizer():
    """torch's AMP example with several optimizers: only optimizer A was unscaled (to clip A); the
    monitored model B's .grad still holds scaled values, which optimizer=optB tells the Monitor."""
    torch.manual_seed(0)
    a, b = nn.Linear(8, 8), ResNetMLP()
    opt_a, opt_b = torch.optim.SGD(a.parameters(), lr=0.1), torch.optim.SGD(b.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    x, y = batch(8)
    for optimizer, want_scaled in ((opt_b, True), (opt_a, False), (None, False)):
        monitor = Monitor(b, every=1, scaler=scaler, optimizer=optimizer)
        with monitor.record(0) as rec:
            scaler.scale(nn.functional.cross_entropy(b(a(x)), y)).backward()
            scaler.unscale_(opt_a)
        applied = float(b.head.weight.grad.double().norm()) / (1024.0 if want_scaled else 1.0)
        assert rec.param_norms["head.weight"] == pytest.approx(applied, rel=1e-9), optimizer
        for model in (a, b):
            model.zero_grad(set_to_none=True)
        scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)


def test_gradients_reset_between_passes_make_the_record_the_last_pass():
    """SAM (two forward/backward passes, zero_grad between them): the weight rows hold the second
    pass's gradient, so the boundaries are the second pass's too, with a warning."""
    torch.manual_seed(0)
    model = ResNetMLP()
    x, y = batch(8)
    x2 = x + 0.5
    ref_model = copy.deepcopy(model)
    weights, bounds = reference(ref_model, x2, y, list(ref_model.blocks))
    monitor = Monitor(model, every=1)
    with pytest.warns(UserWarning, match="reset between backward passes"):
        with monitor.record(0) as rec:
            nn.functional.cross_entropy(model(x), y).backward()
            model.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x2), y).backward()
    assert rec.micro_batches == 1
    check_against(rec, model, weights, bounds)


def test_a_grad_zeroed_inside_the_record_is_not_read_as_a_zero_gradient():
    torch.manual_seed(0)
    model = ResNetMLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = batch(8)
    monitor = Monitor(model, every=1)
    with pytest.warns(UserWarning, match="zeroed after an optimizer step"):
        with monitor.record(0) as rec:
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            opt.zero_grad(set_to_none=False)
    assert "zero" not in {f.rule for f in rec.result.verdict.findings}
    assert not any(layer.has_grad for layer in rec.result.layers)


# -- second review: what must not be flagged, and loops that bypass the model's forward ----------

def boundary_reference(model, x, y) -> list[float]:
    """||dE/dx_l|| by plain hooks and torch.autograd.grad, whatever is frozen."""
    xs: list[torch.Tensor] = []
    blocks = list(model.blocks)
    handles = [b.register_forward_pre_hook(lambda m, a: xs.append(a[0])) for b in blocks]
    handles.append(blocks[-1].register_forward_hook(lambda m, a, o: xs.append(o)))
    loss = nn.functional.cross_entropy(model(x), y)
    for h in handles:
        h.remove()
    return [float(g.double().norm()) for g in torch.autograd.grad(loss, xs)]


def test_a_gradient_that_is_exactly_zero_stays_zero_after_clipping_in_the_record():
    """.grad changed in place inside the record (clip_grad_norm_, as HF's Trainer always runs; DDP's
    bucket copy) but no optimizer step: a true gradient of 0 (a zero-initialised branch) is 0."""
    torch.manual_seed(0)
    model = ResNetMLP()
    nn.init.zeros_(model.blocks[0].fc2.weight)  # fc1's gradient is then exactly 0
    x, y = batch(8)
    monitor = Monitor(model, every=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with monitor.record(0) as rec:
            nn.functional.cross_entropy(model(x), y).backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1e9)
    row = {layer.name: layer for layer in rec.result.layers}["blocks.0.fc1"]
    assert row.has_grad and row.grad_norm == 0.0


def test_micro_batches_are_told_apart_when_the_monitored_model_trains_nothing():
    """Prompt tuning, an adapter outside the monitored module: no parameter to see a backward."""
    torch.manual_seed(0)
    model = ResNetMLP()
    model.requires_grad_(False)
    x, y = batch(8)
    x.requires_grad_(True)
    bounds = boundary_reference(copy.deepcopy(model), x, y)
    monitor = Monitor(model, every=1)
    with monitor.record(0) as rec:
        for xm, ym in zip(x.chunk(2), y.chunk(2)):
            (nn.functional.cross_entropy(model(xm), ym) / 2).backward()
    assert rec.micro_batches == 2
    assert [b.grad_norm for b in rec.result.boundaries] == pytest.approx(bounds, rel=1e-5)


def test_reentrant_checkpoints_holding_every_trained_parameter():
    """LoRA-style: only the blocks train, each under a reentrant checkpoint (HF gradient
    checkpointing with enable_input_require_grads): every accumulation is in the checkpoints' nested
    backwards, and the outer backward that recomputes them is a training one too."""
    torch.manual_seed(0)
    model = ResNetMLP(ckpt="reentrant")
    model.stem.requires_grad_(False)
    model.head.requires_grad_(False)
    model.stem.register_forward_hook(lambda m, a, o: o.requires_grad_(True))
    ref = copy.deepcopy(model)
    ref.ckpt = None
    x, y = batch(8)
    bounds = boundary_reference(ref, x, y)
    monitor = Monitor(model, every=1)
    with monitor.record(0) as rec:
        nn.functional.cross_entropy(model(x), y).backward()
    assert rec.result.verdict.status == "healthy"
    assert [b.grad_norm for b in rec.result.boundaries] == pytest.approx(bounds, rel=1e-5)


@pytest.mark.parametrize("case", ["sam", "pseudo_labels"])
def test_a_loop_that_runs_the_blocks_itself(case):
    """The model's own forward never runs (the loop calls its parts): each pass through the first
    block is a model call, and each micro-batch keeps its own boundaries."""
    torch.manual_seed(0)
    model = ResNetMLP()

    def run(x):
        h = model.stem(x)
        for block in model.blocks:
            h = block(h)
        return model.head(h)

    x, y = batch(8)
    x2 = x + 0.5
    ref = copy.deepcopy(model)
    _, bounds = reference(ref, x2, y, list(ref.blocks))
    monitor = Monitor(model, every=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with monitor.record(0) as rec:
            if case == "sam":
                nn.functional.cross_entropy(run(x), y).backward()
                model.zero_grad(set_to_none=True)
            else:
                run(x).detach()
            nn.functional.cross_entropy(run(x2), y).backward()
    assert rec.result.verdict.status == "healthy"
    assert [b.grad_norm for b in rec.result.boundaries] == pytest.approx(bounds, rel=1e-5)


def test_after_a_reset_the_output_gradient_is_the_last_passes_too():
    torch.manual_seed(0)
    model = ResNetMLP()
    x, y = batch(8)
    x2 = x + 0.5
    out = copy.deepcopy(model)(x2)
    (want,) = torch.autograd.grad(nn.functional.cross_entropy(out, y), out)
    monitor = Monitor(model, every=1)
    with pytest.warns(UserWarning, match="reset"):
        with monitor.record(0) as rec:
            nn.functional.cross_entropy(model(x), y).backward()
            model.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x2), y).backward()
    assert rec.result.summary.output_grad_norm == pytest.approx(float(want.double().norm()), rel=1e-6)


def test_frozen_boundaries_are_counted_once_whatever_the_micro_batches():
    from examples.user_models import frozen_backbone

    torch.manual_seed(0)
    model = frozen_backbone()
    x = torch.randn(8, 3, 32, 32)
    y = torch.randint(0, 10, (8,))
    counts = []
    for k in (1, 4):
        monitor = Monitor(model, every=1)
        with monitor.record(0) as rec:
            for xm, ym in zip(x.chunk(k), y.chunk(k)):
                (nn.functional.cross_entropy(model(xm), ym) / k).backward()
        counts.append(rec.result.verdict.scope.inert_boundaries)
        model.zero_grad(set_to_none=True)
    assert counts == [3, 3]


def test_at_init_is_the_callers_to_say():
    """The HF Trainer numbers its first update 1, taken on the initial weights: the weight-scale rule,
    a statement about initialisations, still applies (``begin(step, at_init=True)``)."""
    torch.manual_seed(0)
    model = ResNetMLP()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(8.0)  # gain far above 2: scale.gain fires on initial weights
    x, y = batch(8)
    rules = []
    for at_init in (True, False):
        monitor = Monitor(model, every=1)
        monitor.begin(1, at_init=at_init)
        nn.functional.cross_entropy(model(x), y).backward()
        rules.append({f.rule for f in monitor.end().result.verdict.findings})
        model.zero_grad(set_to_none=True)
    assert "scale.gain" in rules[0] and "scale.gain" not in rules[1]


def test_a_scaler_step_inside_the_record_is_not_unscaled_twice():
    """scaler.step(opt) unscales .grad before stepping (stage STEPPED): the rows are divided once."""
    torch.manual_seed(0)
    model = ResNetMLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    x, y = batch(8)
    monitor = Monitor(model, every=1, scaler=scaler)
    with monitor.record(0) as rec:
        scaler.scale(nn.functional.cross_entropy(model(x), y)).backward()
        scaler.step(opt)
    want = float(model.head.weight.grad.double().norm())  # unscaled by scaler.step
    assert rec.param_norms["head.weight"] == pytest.approx(want, rel=1e-9)

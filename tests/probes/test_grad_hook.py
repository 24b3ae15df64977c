"""``edge_hook`` (a pre-hook on the node that made a tensor, registered from the node read when the
tensor was recorded) against ``Tensor.register_hook``; and ``GradientProbe.backward`` (grad-flow's one
``torch.autograd.grad`` call, no hook) against the probe's hooks: the same gradients, bit for bit, on
the cases where they could differ."""

import pytest
import torch
from torch import nn
from torch.autograd.graph import GradientEdge
from torch.utils.checkpoint import checkpoint

import resdiag.probes.grad as grad_module
from examples.user_models import TinyResNet, TwiceCalled
from resdiag.probes.boundaries import edge_hook
from resdiag.probes.grad import GradientProbe
from resdiag.zoo import build
from tests.support import small


def both(make, consume):
    """dE/dt read by a tensor hook placed on the tensor ``make`` returns, and by ``edge_hook`` from its
    node read then but registered only after ``consume`` (which may modify it in place) built the
    loss, as ``GradientProbe.backward`` registers its hooks when it falls back to them."""
    got = {}
    w = torch.linspace(-1.0, 2.0, 6, dtype=torch.float64, requires_grad=True)
    t = make(w)
    node, nr = t.grad_fn, t.output_nr
    t.register_hook(lambda g: got.__setitem__("tensor", g.clone()))
    loss = consume(t, w)
    edge_hook(t if node is None else GradientEdge(node, nr), lambda g: got.__setitem__("node", g.clone()))
    loss.backward()
    return got


CASES = {
    "used twice": (lambda w: w * 2, lambda t, w: (t * t).sum() + (t * 3).sum()),
    "modified in place": (lambda w: w * 2, lambda t, w: (t.mul_(3) * torch.arange(6.0)).sum()),
    "view modified in place": (lambda w: w * 2, lambda t, w: (t[1:4].mul_(5), (t * t).sum())[1]),
    "relu_ in place": (lambda w: w * 2, lambda t, w: (t.relu_() * torch.arange(6.0)).sum()),
    "second output of chunk": (lambda w: (w * 1).chunk(2)[1], lambda t, w: (t * torch.arange(3.0)).sum()),
    "leaf": (lambda w: w, lambda t, w: (t * t * torch.arange(6.0)).sum()),
}


@pytest.mark.parametrize("case", CASES)
def test_edge_hook_sees_what_a_tensor_hook_sees(case):
    got = both(*CASES[case])
    assert torch.equal(got["tensor"], got["node"])


def test_edge_hook_skips_an_output_that_gets_no_gradient():
    w = torch.ones(4, requires_grad=True)
    a, b = (w * 2).chunk(2)
    calls = []
    edge_hook(GradientEdge(b.grad_fn, b.output_nr), calls.append)
    a.sum().backward()
    assert calls == []


def steps(model, x, y, own: bool, loss_fn=nn.functional.cross_entropy):
    """Two recorded steps, by the hooks or by backward(); the model's .grad after them."""
    out = []
    with GradientProbe(model, weights_from="grad", **({"own_backward": True} if own else {})) as probe:
        for _ in range(2):
            model.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            probe.backward(loss) if own else loss.backward()
            out.append(probe.step())
    return out, [p.grad for p in model.parameters()]


class InPlaceInput(nn.Module):
    """A block that scales its own input in place before using it."""

    resdiag_block = True

    def __init__(self, width: int = 6):
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x):
        x.mul_(1.5)
        return x + torch.tanh(self.fc(x))


class Plain(InPlaceInput):
    def forward(self, x):
        return x + torch.tanh(self.fc(x))


class Checkpointed(nn.Module):
    """Three blocks; the first and last scale their input in place; the middle one, run under
    torch.utils.checkpoint when ``reentrant`` is not None, does not (a checkpointed block cannot)."""

    def __init__(self, reentrant: bool | None):
        super().__init__()
        self.stem, self.head = nn.Linear(4, 6), nn.Linear(6, 3)
        self.blocks = nn.ModuleList([InPlaceInput(), Plain(), InPlaceInput()])
        self.reentrant = reentrant

    def forward(self, x):
        x = self.stem(x)
        for i, block in enumerate(self.blocks):
            x = checkpoint(block, x, use_reentrant=self.reentrant) if i == 1 and self.reentrant is not None \
                else block(x)
        return self.head(x)


def problems():
    torch.manual_seed(0)
    yield "resnet", build(small("resnet")).double(), torch.randn(3, 3, 8, 8, dtype=torch.float64)
    yield "tiny resnet, in-place relu", TinyResNet().double(), torch.randn(3, 3, 8, 8, dtype=torch.float64)
    yield "block called twice", TwiceCalled().double(), torch.randn(3, 3, 8, 8, dtype=torch.float64)
    for mode in (None, False, True):
        yield f"in-place input, checkpoint {mode}", Checkpointed(mode).double(), torch.randn(5, 4).double()


@pytest.mark.parametrize("name,model,x", list(problems()), ids=lambda v: v if isinstance(v, str) else "")
def test_own_backward_equals_the_hooks_bit_for_bit(name, model, x):
    y = torch.arange(len(x)) % 3
    hooked, _ = steps(model, x, y, own=False)
    own, grads = steps(model, x, y, own=True)
    assert own == hooked  # NaN != NaN: every boundary has a gradient
    assert len(own[0].boundary_grad) >= 3 and all(v > 0 for v in own[0].boundary_grad)
    assert not any("#" in name for name in own[0].boundary_names if "block:" not in name)
    if "checkpoint True" not in name:  # a reentrant checkpoint makes backward() call loss.backward()
        assert all(g is None for g in grads)  # backward() leaves .grad untouched


def test_in_place_input_reads_the_gradient_of_the_value_the_block_received():
    """x_1 is scaled by 1.5 inside block 1: dE/dx_1 is 1.5 times the gradient of the scaled value."""
    torch.manual_seed(0)
    model = Checkpointed(None).double()
    x, y = torch.randn(5, 4).double(), torch.arange(5) % 3
    (step,), _ = steps(model, x, y, own=True)[0][:1], None
    h = model.stem(x).detach().requires_grad_()
    scaled = h * 1.5  # what block 0 does to its input, without the in-place op
    out = model.head(model.blocks[2](model.blocks[1](scaled + torch.tanh(model.blocks[0].fc(scaled)))))
    # block 2 scales its input in place too; that is part of what lies downstream of x_1
    want = torch.autograd.grad(nn.functional.cross_entropy(out, y), h)[0].norm().item()
    assert step.boundary_grad[0] == pytest.approx(want, rel=1e-12)


def test_backward_falls_back_to_hooks_above_the_memory_bound(monkeypatch):
    torch.manual_seed(0)
    model, x = build(small("resnet")).double(), torch.randn(3, 3, 8, 8, dtype=torch.float64)
    y = torch.tensor([0, 1, 2])
    hooked, _ = steps(model, x, y, own=False)
    monkeypatch.setattr(grad_module, "_HOLD_BYTES", 1024)
    own, grads = steps(model, x, y, own=True)
    assert own == hooked
    assert all(g is not None for g in grads)  # the fallback ran loss.backward()


def test_reentrant_checkpoint_is_found_once():
    model = Checkpointed(True).double()
    with GradientProbe(model, weights_from="grad", own_backward=True) as probe:
        probe.backward(model(torch.randn(2, 4).double()).sum())
        assert probe._reentrant is True
        probe.step()
    with GradientProbe(Checkpointed(False).double(), weights_from="grad", own_backward=True) as probe:
        probe.backward(probe.model(torch.randn(2, 4).double()).sum())
        assert probe._reentrant is False


def test_own_backward_needs_weights_from_grad():
    with pytest.raises(ValueError, match="own_backward"):
        GradientProbe(TinyResNet(), own_backward=True)


@pytest.mark.parametrize("reentrant", [False, True])
@pytest.mark.parametrize("own", [False, True])
def test_a_checkpoint_recomputation_adds_no_boundary(reentrant, own):
    """grad-flow's probe on a model with an activation-checkpointed block: the block's recomputation
    in backward is no new boundary (it was one with no gradient, NaN, read as "exploding")."""
    torch.manual_seed(0)
    model = Checkpointed(reentrant).double()
    (step, _), _ = steps(model, torch.randn(5, 4).double(), torch.arange(5) % 3, own=own)
    assert step.boundary_names == ("blocks.0:in", "blocks.1:in", "blocks.2:in", "blocks.2:out")
    assert all(0 < v < float("inf") for v in step.boundary_grad)


@pytest.mark.parametrize("reentrant", [None, False, True])
@pytest.mark.parametrize("own", [False, True])
def test_a_no_grad_forward_then_a_checkpointed_one(reentrant, own):
    """An evaluation forward under no_grad records nothing, not even a call count ("blocks.0:in#2");
    then the training forward, with a checkpointed block: the recomputation takes nothing of the
    evaluation forward (it gave a fifth boundary, out of order)."""
    torch.manual_seed(0)
    model, x, y = Checkpointed(reentrant).double(), torch.randn(5, 4).double(), torch.arange(5) % 3
    (want, _), _ = steps(model, x, y, own=own)
    with GradientProbe(model, weights_from="grad", **({"own_backward": True} if own else {})) as probe:
        with torch.no_grad():
            model(x)
        model.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        probe.backward(loss) if own else loss.backward()
        assert probe.step() == want


class TwiceInOneCheckpoint(nn.Module):
    """Block 0 called twice inside one reentrant checkpoint segment (its first call on the segment's
    input, or both on tensors made inside it)."""

    def __init__(self, first_on_input: bool):
        super().__init__()
        self.stem, self.head = nn.Linear(4, 6), nn.Linear(6, 3)
        self.blocks = nn.ModuleList([Plain(), Plain()])
        self.first_on_input = first_on_input

    def segment(self, h):
        h = h if self.first_on_input else h * 2.0
        return self.blocks[0](self.blocks[0](h) * 3.0)

    def forward(self, x):
        return self.head(self.blocks[1](checkpoint(self.segment, self.stem(x), use_reentrant=True)))


@pytest.mark.parametrize("first_on_input", [True, False])
@pytest.mark.parametrize("own", [False, True])
def test_a_block_called_twice_in_one_reentrant_checkpoint_is_refused(first_on_input, own):
    """Its recomputed calls cannot be matched to the forward's (they were swapped or duplicated):
    grad-flow says so instead of reporting them; the Monitor leaves them out with a warning."""
    from resdiag.api import Monitor
    from resdiag.errors import ResdiagError

    torch.manual_seed(0)
    model = TwiceInOneCheckpoint(first_on_input).double()
    x, y = torch.randn(5, 4).double(), torch.arange(5) % 3
    with pytest.raises(ResdiagError, match="blocks.0:in: a block called more than once inside one reentrant"):
        steps(model, x, y, own=own)
    monitor = Monitor(model, every=1)
    with pytest.warns(UserWarning, match="blocks.0:in called more than once"):
        with monitor.record(0) as rec:
            nn.functional.cross_entropy(model(x), y).backward()
    assert [b.name for b in rec.result.boundaries] == ["blocks.1:in", "blocks.1:out"]


class Token:
    pass


class Mark(torch.autograd.Function):
    """Identity whose autograd node holds a Token: the node is alive while a weak reference is."""

    tokens: list = []

    @staticmethod
    def forward(ctx, x):
        ctx.token = Token()
        Mark.tokens.append(__import__("weakref").ref(ctx.token))
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


class Marked(Plain):
    def forward(self, x):
        return Mark.apply(super().forward(x))


def test_close_releases_the_graph_of_a_forward_never_backpropagated():
    """An exception between forward and backward: once the probe is closed, nothing of that graph
    is held (own_backward kept every boundary's node until the next step)."""
    import gc

    Mark.tokens.clear()
    model = Checkpointed(None)
    model.blocks = nn.ModuleList([Marked(), Marked(), Marked()])
    probe = GradientProbe(model, weights_from="grad", own_backward=True)
    with pytest.raises(RuntimeError, match="loss fails"), probe:
        out = model(torch.randn(5, 4))
        raise RuntimeError("loss fails between forward and backward")
    del out
    gc.collect()
    assert len(Mark.tokens) == 3 and all(ref() is None for ref in Mark.tokens)


def test_a_model_called_twice_reads_its_output_as_the_hooks_do():
    xa, xb = torch.randn(5, 4).double(), torch.randn(5, 4).double()
    got = []
    for own in (False, True):
        torch.manual_seed(0)
        model = Checkpointed(None).double()
        with GradientProbe(model, weights_from="grad", **({"own_backward": True} if own else {})) as probe:
            loss = (model(xa) ** 2).sum() * 10 + (model(xb) ** 2).sum()
            probe.backward(loss) if own else loss.backward()
            got.append(probe.step())
    assert got[0] == got[1]


def test_backward_once_per_step():
    model = Checkpointed(None)
    with GradientProbe(model, weights_from="grad", own_backward=True) as probe:
        probe.backward(model(torch.randn(2, 4)).sum())
        with pytest.raises(RuntimeError, match="once per step"):
            probe.backward(model(torch.randn(2, 4)).sum())


def test_a_reentrant_checkpoint_not_found_is_one_clear_error(monkeypatch):
    """One under another name than torch's: torch.autograd.grad cannot run it, and the graph is
    spent, so grad-flow stops with one line instead of a traceback."""
    from resdiag.errors import ResdiagError

    monkeypatch.setattr(grad_module, "has_reentrant_checkpoint", lambda loss: False)
    model = Checkpointed(True).double()
    with GradientProbe(model, weights_from="grad", own_backward=True) as probe:
        with pytest.raises(ResdiagError, match="reentrant checkpoint resdiag did not find") as exc:
            probe.backward(model(torch.randn(2, 4).double()).sum())
    assert "\n" not in str(exc.value)


class Scaled(Plain):
    """A block that scales the gradient flowing back out of its output by 10 (a tensor hook, as
    gradient-reversal layers place one)."""

    def forward(self, x):
        out = super().forward(x)
        if out.requires_grad:
            out.register_hook(lambda g: g * 10)
        return out


def test_own_backward_reads_a_boundary_before_the_models_own_hooks_change_it():
    """x_1 is block 0's output, whose gradient the model multiplies by 10 on the way back: grad-flow
    reads dE/dx_1 as the chain rule gives it there (the model without the hook), and dE/dx_0 with the
    factor 10 that flowed through it."""
    torch.manual_seed(0)
    plain = Checkpointed(None).double()
    plain.blocks = nn.ModuleList([Plain(), Plain(), Plain()]).double()
    scaled = __import__("copy").deepcopy(plain)
    scaled.blocks[0].__class__ = Scaled
    x, y = torch.randn(5, 4).double(), torch.arange(5) % 3
    (want, _), _ = steps(plain, x, y, own=True)
    (got, _), _ = steps(scaled, x, y, own=True)
    assert got.boundary_grad[1:] == pytest.approx(want.boundary_grad[1:], rel=1e-12)
    assert got.boundary_grad[0] == pytest.approx(10 * want.boundary_grad[0], rel=1e-12)


@pytest.mark.parametrize("reentrant", [False, True])
@pytest.mark.parametrize("own", [False, True])
def test_the_whole_model_under_a_checkpoint(reentrant, own):
    """A parent checkpoints the probed model: its first pass runs without autograd (reentrant),
    yet it is no evaluation (its input requires grad): the boundaries of the plain model."""
    from resdiag.api import Monitor

    torch.manual_seed(0)
    model, x, y = Checkpointed(None).double(), torch.randn(5, 4).double(), torch.arange(5) % 3
    model.blocks = nn.ModuleList([Plain(), Plain(), Plain()]).double()
    (want, _), _ = steps(model, x, y, own=own)

    def whole(target):
        return nn.functional.cross_entropy(checkpoint(model, x.clone().requires_grad_(),
                                                      use_reentrant=reentrant), target)

    with GradientProbe(model, weights_from="grad", **({"own_backward": True} if own else {})) as probe:
        loss = whole(y)
        probe.backward(loss) if own else loss.backward()
        got = probe.step()
    assert got.boundary_names == want.boundary_names
    assert got.boundary_grad == pytest.approx(want.boundary_grad, rel=1e-12)
    monitor = Monitor(model, every=1)
    with monitor.record(0) as rec:
        whole(y).backward()
    assert [b.grad_norm for b in rec.result.boundaries] == pytest.approx(want.boundary_grad, rel=1e-12)


def test_an_evaluation_forward_that_raises_leaves_nothing_switched_off():
    """The no_grad forward fails inside the model; blocks called directly afterwards are recorded."""
    model = Checkpointed(None)
    with GradientProbe(model, weights_from="grad") as probe:
        with torch.no_grad(), pytest.raises(RuntimeError):
            model(torch.randn(2, 5))  # the stem takes 4 features
        model.blocks[1](model.stem(torch.randn(2, 4))).sum().backward()
        assert probe.step().boundary_names == ("blocks.1:in",)

"""The spine: TargetSpec -> build_target. Inputs, the output -> loss adapter, the refusals of
outputs that cannot carry a gradient, checkpoint identity and the seed, each against an
independent computation."""

import hashlib
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from resdiag.errors import ResdiagError
from resdiag.run.gradflow import grad_flow, run_grad_flow
from resdiag.run.inputs import InputSpec
from resdiag.run.rank import run_rank
from resdiag.run.target import TargetSpec, build_target
from resdiag.zoo import build, resolve
from tests.helpers import invoke_out
from tests.run import factories

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # --model imports from the current directory, as a user's shell would


def tiny(name="resnet8"):
    return resolve(name, width=0.25, input_shape=(3, 8, 8))


def grad_json(tmp_path, *args):
    out = tmp_path / "g.json"
    code, _, err = invoke_out(["grad-flow", *args, "-k", "1", "-b", "4", "--device", "cpu",
                               "--json", str(out)])
    return code, err, (json.loads(out.read_text()) if code == 0 else None)


# ---------------------------------------------------------------- the spec


def test_a_spec_names_exactly_one_model():
    with pytest.raises(ResdiagError, match="exactly one"):
        TargetSpec()
    with pytest.raises(ResdiagError, match="exactly one"):
        TargetSpec(arch=tiny(), factory="a:b")
    with pytest.raises(ResdiagError, match="unknown loss"):
        TargetSpec(arch=tiny(), loss="hinge")
    with pytest.raises(TypeError):
        TargetSpec(tiny())  # keyword-only


# ---------------------------------------------------------------- outputs -> loss


@pytest.mark.parametrize("factory", [factories.dict_output, factories.tuple_output])
def test_dict_and_tuple_outputs_give_the_logits_loss(factory):
    model = factory()
    x, y = torch.randn(4, 8), torch.tensor([0, 1, 2, 3])
    target = build_target(TargetSpec(module=model, inputs=InputSpec(kind="batch", batch=(x, y))))
    r = grad_flow(target, batches=1, batch_size=4, device="cpu")
    e = nn.functional.cross_entropy(model.fc(x), y)
    (g,) = torch.autograd.grad(e, [model.fc.weight])
    assert r.run.loss == pytest.approx(float(e.detach()), rel=1e-6)
    assert r.layers[-1].grad_norm == pytest.approx(float(g.norm()), rel=1e-5)


def test_sequence_logits_take_next_token_cross_entropy():
    model = factories.tiny_lm()
    ids = torch.randint(0, factories.VOCAB, (3, 6), generator=torch.Generator().manual_seed(1))
    target = build_target(TargetSpec(module=model, inputs=InputSpec(kind="batch", batch=ids)))
    assert target.sequence and target.objective == "next_token_cross_entropy"
    r = grad_flow(target, batches=1, batch_size=3, device="cpu")
    logits = model(ids)
    manual = -torch.log_softmax(logits, -1)[:, :-1].gather(-1, ids[:, 1:, None]).mean()
    assert r.run.loss == pytest.approx(float(manual.detach()), rel=1e-6)
    assert r.run.objective == "next_token_cross_entropy"


def test_token_inputs_draw_ids_below_the_embedding_size(at_root, tmp_path):
    target = build_target(TargetSpec(factory="tests.run.factories:tiny_lm",
                                     inputs=InputSpec(kind="tokens", seq_len=5)))
    assert target.inputs.vocab == factories.VOCAB  # from the model's nn.Embedding
    batch = next(target.batches(__import__("resdiag.data").data.DataSpec("synthetic"), 64, 1, 0))
    assert batch.inputs.dtype == torch.int64 and batch.inputs.shape == (64, 5)
    assert int(batch.inputs.max()) < factories.VOCAB
    small = build_target(TargetSpec(factory="tests.run.factories:tiny_lm",
                                    inputs=InputSpec(kind="tokens", seq_len=5, vocab=7)))
    b = next(small.batches(__import__("resdiag.data").data.DataSpec("synthetic"), 64, 1, 0))
    assert int(b.inputs.max()) < 7
    with pytest.raises(ResdiagError, match="exceeds the model's input embedding"):
        build_target(TargetSpec(factory="tests.run.factories:tiny_lm",
                                inputs=InputSpec(kind="tokens", seq_len=5, vocab=1000)))
    with pytest.raises(ResdiagError, match="give --vocab"):
        build_target(TargetSpec(factory="tests.run.factories:linear_net",
                                inputs=InputSpec(kind="tokens", seq_len=5)))


# ---------------------------------------------------------------- refusals (issue 10.3)

REFUSED = [
    ("one_logit", "one logit per sample"),
    ("no_grad", "does not require grad"),
    ("integer_logits", "integer logits"),
]


@pytest.mark.parametrize("factory, message", REFUSED, ids=[f for f, _ in REFUSED])
@pytest.mark.parametrize("command", ["grad-flow", "rank"])
def test_outputs_without_a_gradient_signal_are_refused(at_root, tmp_path, factory, message, command):
    out = tmp_path / "o.json"
    code, _, err = invoke_out([command, "--model", f"tests.run.factories:{factory}", "--input-shape", "8",
                               "-b", "4", "--device", "cpu", "--json", str(out)])
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_one_logit_is_fine_under_mse(at_root, tmp_path):
    code, err, d = grad_json(tmp_path, "--model", "tests.run.factories:one_logit", "--input-shape", "8",
                             "--loss", "mse")
    assert code == 0, err
    assert d["run"]["objective"] == "mse" and d["layers"][0]["grad_norm"] > 0


# ---------------------------------------------------------------- the seed (issue 10.6)


@pytest.mark.parametrize("command", ["grad-flow", "rank"])
def test_seed_reaches_model_factories(at_root, tmp_path, command):
    """The same --seed gives the same numbers for a factory that draws random weights."""
    def run(seed):
        out = tmp_path / f"{seed}.json"
        code, _, err = invoke_out([command, "--model", "tests.run.factories:linear_net", "--input-shape", "8",
                                   "-b", "4", "--device", "cpu", "--seed", str(seed), "--json", str(out)])
        assert code == 0, err
        d = json.loads(out.read_text())
        rows = d.get("layers", d.get("weights"))
        return d["run"]["loss"], [w.get("grad_norm", w.get("erank")) for w in rows]

    a, b, c = run(3), run(3), run(4)
    assert a == b
    assert a != c


def test_seed_reaches_factories_through_the_api():
    spec = TargetSpec(factory="tests.run.factories:linear_net", inputs=InputSpec(shape=(8,)), seed=11)
    a = build_target(spec).model.state_dict()
    torch.rand(100)  # the global generator moves on between the two builds
    b = build_target(spec).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------- checkpoints (issue 10.5)


@pytest.fixture(scope="module")
def plain8_run(tmp_path_factory):
    from resdiag.train import RunOptions, run_training

    out = tmp_path_factory.mktemp("plain8")
    run_training(TargetSpec(arch=tiny("plain8")), {"steps": 1, "batch_size": 8},
                 RunOptions(out, features=False, plots=False, device="cpu"))
    return out / "checkpoint.pt"


@pytest.mark.parametrize("command", ["grad-flow", "rank"])
def test_a_train_checkpoint_of_another_architecture_is_refused(plain8_run, command):
    code, _, err = invoke_out([command, "--arch", "resnet8", "--width", "0.25", "--input-shape", "3,8,8",
                               "--checkpoint", str(plain8_run), "-b", "4", "--device", "cpu"])
    assert code == 2 and err.count("\n") == 1, err
    assert "written by 'resdiag train' for plain8" in err and "not for resnet8" in err


def test_a_train_checkpoint_of_the_same_model_loads_and_is_recorded(plain8_run):
    r = run_rank(TargetSpec(arch=tiny("plain8"), checkpoint=plain8_run), batch_size=4, device="cpu")
    w = r.model.weights
    assert w["path"] == str(plain8_run) and w["kind"] == "resdiag-train" and w["written_for"] == "plain8"
    assert w["sha256"] == hashlib.sha256(plain8_run.read_bytes()).hexdigest()


def test_a_bare_state_dict_is_fingerprinted_in_the_result(tmp_path):
    cfg = tiny()
    torch.manual_seed(9)
    state = build(cfg).state_dict()
    path = tmp_path / "w.pt"
    torch.save(state, path)
    r = run_grad_flow(TargetSpec(arch=cfg, checkpoint=path), batches=1, batch_size=4, device="cpu")
    w = json.loads(r.to_json())["model"]["weights"]
    assert w == {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                 "kind": "state_dict", "written_for": None, "tensors": len(state),
                 "values": sum(v.numel() for v in state.values())}
    assert run_grad_flow(TargetSpec(arch=cfg), batches=1, batch_size=4, device="cpu").model.weights is None

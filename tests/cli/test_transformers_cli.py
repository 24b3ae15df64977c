"""Language models from HuggingFace through the CLI: ``--tokens``, ModelOutput logits, next-token
cross-entropy or the model's own loss, and the seed. Tiny configs, random init (never
``from_pretrained``); every loss and the head's gradient norm against an independent computation."""

import json
from pathlib import Path

import pytest
import torch

from tests.helpers import invoke_out
from tests.run import factories

pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[2]
SEQ, BATCH, SEED = 8, 2, 5
HEAD = {"gpt2": "lm_head", "llama": "lm_head", "bert": "cls.predictions.decoder"}


@pytest.fixture(autouse=True)
def _at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def reference(name: str, loss: str = "cross_entropy"):
    """The model the factory builds under the seed, the ids resdiag draws, E and dE/dW_head."""
    torch.manual_seed(SEED)
    model = getattr(factories, name)().train()
    ids = torch.randint(0, factories.VOCAB, (BATCH, SEQ), generator=torch.Generator().manual_seed(SEED))
    if loss == "model":
        e = model(input_ids=ids, labels=ids).loss  # HuggingFace's own shifted loss
    else:
        logits = model(input_ids=ids).logits
        v = factories.VOCAB
        e = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, v), ids[:, 1:].reshape(-1))
    head = model.get_submodule(HEAD[name]).weight
    (g,) = torch.autograd.grad(e, [head])
    return float(e.detach()), float(g.norm())


def grad_flow(tmp_path, name, *extra):
    out = tmp_path / f"{name}.json"
    code, _, err = invoke_out(["grad-flow", "--model", f"tests.run.factories:{name}", "--tokens", str(SEQ),
                               "-k", "1", "-b", str(BATCH), "--seed", str(SEED), "--device", "cpu",
                               "--json", str(out), *extra])
    assert code == 0, err
    return json.loads(out.read_text())


@pytest.mark.parametrize("name", factories.HF)
def test_language_models_run_with_next_token_loss(tmp_path, name):
    d = grad_flow(tmp_path, name)
    e, g = reference(name)
    assert d["run"]["objective"] == "next_token_cross_entropy"
    assert d["model"]["config"]["inputs"] == {"kind": "tokens", "seq_len": SEQ, "vocab": factories.VOCAB}
    assert d["run"]["loss"] == pytest.approx(e, rel=1e-5)
    head = next(x for x in d["layers"] if x["name"] == HEAD[name])
    assert head["grad_norm"] == pytest.approx(g, rel=1e-5)


def test_the_models_own_loss(tmp_path):
    d = grad_flow(tmp_path, "gpt2", "--loss", "model")
    e, g = reference("gpt2", "model")
    assert d["run"]["objective"] == "model" and d["run"]["loss"] == pytest.approx(e, rel=1e-5)
    assert e == pytest.approx(reference("gpt2")[0], rel=1e-5)  # GPT-2's loss is next-token CE
    head = next(x for x in d["layers"] if x["name"] == "lm_head")
    assert head["grad_norm"] == pytest.approx(g, rel=1e-5)


def test_token_options_are_checked(tmp_path):
    code, _, err = invoke_out(["grad-flow", "--model", "tests.run.factories:gpt2", "--tokens", "8",
                               "--input-shape", "8", "--device", "cpu"])
    assert code == 2 and "not both" in err
    code, _, err = invoke_out(["grad-flow", "--model", "tests.run.factories:gpt2", "--vocab", "8",
                               "--device", "cpu"])
    assert code == 2 and "--vocab applies to token inputs" in err
    code, _, err = invoke_out(["grad-flow", "--model", "tests.run.factories:gpt2", "--input-shape", "8",
                               "--device", "cpu"])
    assert code == 2 and err.count("\n") == 1 and "forward fails" in err

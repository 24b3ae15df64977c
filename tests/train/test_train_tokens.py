"""`resdiag train --tokens`: a language model trains on token ids with next-token cross-entropy."""

from pathlib import Path

import pytest
import torch

from resdiag.train.log import read
from tests.helpers import invoke_out
from tests.run import factories

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_train_on_tokens_records_the_next_token_loss(tmp_path):
    out = tmp_path / "run"
    code, _, err = invoke_out(["train", "--model", "tests.run.factories:tiny_lm", "--tokens", "6",
                               "--steps", "2", "-b", "4", "--seed", "3", "--device", "cpu",
                               "--no-features", "--out", str(out)])
    assert code == 0, err
    lines = read(out / "train.jsonl")
    start = next(x for x in lines if x["type"] == "start")
    assert start["model"]["config"]["inputs"] == {"kind": "tokens", "seq_len": 6, "vocab": factories.VOCAB}
    step0 = next(x for x in lines if x["type"] == "step" and x["step"] == 0)
    probe = next(x for x in lines if x["type"] == "probe")
    assert probe["grad_flow"]["run"]["objective"] == "next_token_cross_entropy"
    # step 0's loss is E of the initial weights (the factory's under --seed 3) on the first batch of
    # the fixed token set (ids drawn first from a generator seeded by 3, then ordered by TrainSet)
    from resdiag.train.data import TrainSet

    n = start["config"]["synthetic_size"]
    ids = torch.randint(0, factories.VOCAB, (n, 6), generator=torch.Generator().manual_seed(3))
    x, _ = TrainSet(ids, torch.zeros(n, dtype=torch.long), 3).batch(0, 4)
    torch.manual_seed(3)
    logits = factories.tiny_lm()(x)
    e = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, factories.VOCAB), x[:, 1:].reshape(-1))
    assert step0["loss"] == pytest.approx(float(e.detach()), rel=1e-6)
    wrong = (logits[:, :-1].argmax(-1) != x[:, 1:]).double().mean()
    assert step0["error"] == pytest.approx(float(wrong))

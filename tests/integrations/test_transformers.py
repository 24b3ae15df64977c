"""ResdiagCallback inside a real transformers.Trainer.train (tiny GPT-2, random tokens)."""

import json
import math

import pytest
import torch

transformers = pytest.importorskip("transformers")

from resdiag.integrations.transformers import ResdiagCallback  # noqa: E402


class Tokens(torch.utils.data.Dataset):
    def __init__(self, n=64, seq=12, vocab=64):
        self.ids = torch.randint(0, vocab, (n, seq), generator=torch.Generator().manual_seed(0))

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


class Seen(transformers.TrainerCallback):
    """Runs after ResdiagCallback: sees the logs a report_to integration would, and the p.grad the
    optimizer applies."""

    def __init__(self):
        self.logs, self.grads = {}, {}

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.grads[state.global_step] = {n: p.grad.double().norm().item()
                                         for n, p in model.named_parameters() if p.grad is not None}

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.setdefault(state.global_step, dict(logs))  # the training log, not the summary


@pytest.mark.parametrize("accumulate", [1, 2])
def test_train_records_and_logs(tmp_path, accumulate):
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=2, n_positions=16)
    model = transformers.GPT2LMHeadModel(cfg)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=4, per_device_train_batch_size=4,
        gradient_accumulation_steps=accumulate, logging_steps=2, report_to=[], save_strategy="no",
        use_cpu=True, disable_tqdm=True, learning_rate=1e-3, max_grad_norm=0.0)
    seen = Seen()
    trainer = transformers.Trainer(model=model, args=args, train_dataset=Tokens(), callbacks=[seen])
    cb = ResdiagCallback.attach(trainer, every=2, jsonl=tmp_path / "r.jsonl")
    trainer.train()
    assert [r.step for r in cb.history] == [2, 4]  # the Trainer's numbers: update k-1 -> k is step k
    assert {r.micro_batches for r in cb.history} == {accumulate}
    for rec in cb.history:
        want = seen.grads[rec.step - 1]  # state.global_step before the update
        got = rec.lightning()
        for name, v in want.items():
            assert got[f"grad_2.0_norm/{name}"] == pytest.approx(v, rel=1e-6), name
        assert [b.name for b in rec.result.boundaries] == ["transformer.h.0:in", "transformer.h.1:in",
                                                          "transformer.h.1:out"]
        assert all(math.isfinite(b.grad_norm) for b in rec.result.boundaries)
    # logging_steps=2 logs at global steps 2 and 4: the records of those updates, in the same line
    # (the Trainer's step-k log is of the update k-1 -> k, whose .grad Seen read at global_step k-1)
    for k in (2, 4):
        assert seen.logs[k]["grad_2.0_norm/transformer.h.0.attn.c_attn.weight"] == pytest.approx(
            seen.grads[k - 1]["transformer.h.0.attn.c_attn.weight"], rel=1e-6)
    assert seen.logs[2]["grad_2.0_norm/transformer.h.0.attn.c_attn.weight"] == pytest.approx(
        cb.history[0].param_norms["transformer.h.0.attn.c_attn.weight"], rel=1e-6)
    assert seen.logs[4]["resdiag/boundary_ratio"] == pytest.approx(
        cb.history[1].result.summary.boundary_ratio, rel=1e-6)
    lines = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [d["step"] for d in lines] == [2, 4]

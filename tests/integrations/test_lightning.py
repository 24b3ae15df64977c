"""ResdiagCallback inside a real lightning.pytorch Trainer.fit (tiny model, random data)."""

import json
import math

import pytest
import torch
from torch import nn

L = pytest.importorskip("lightning.pytorch")
from lightning.pytorch.utilities import grad_norm  # noqa: E402

from resdiag.integrations.lightning import ResdiagCallback  # noqa: E402
from tests.integrations.problems import ResNetMLP, batch  # noqa: E402


class Module(L.LightningModule):
    """Holds the network as ``self.model``: Lightning's keys read ``grad_2.0_norm/model.<param>``."""

    def __init__(self, compile_model: bool = False):
        super().__init__()
        torch.manual_seed(0)
        net = ResNetMLP()
        self.model = torch.compile(net) if compile_model else net
        self.lightning_norms: dict[int, dict[str, float]] = {}

    def training_step(self, b, i):
        x, y = b
        return nn.functional.cross_entropy(self.model(x), y)

    def on_before_optimizer_step(self, optimizer):  # Lightning's own grad_norm, as its docs show
        norms = grad_norm(self, norm_type=2)
        self.lightning_norms[self.trainer.global_step] = {k: float(v) for k, v in norms.items()}

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


class Logged(L.loggers.Logger):
    """What the Trainer's loggers received (through log_dict), by the step Lightning reports."""

    def __init__(self):
        super().__init__()
        self.seen: dict[int, dict[str, float]] = {}

    name, version = "test", 0

    def log_hyperparams(self, params, *args, **kwargs):
        pass

    def log_metrics(self, metrics, step=None):
        keys = {k: float(v) for k, v in metrics.items() if k.startswith(("grad_2.0", "resdiag/"))}
        if keys:
            self.seen[step] = keys


def fit(module, callback, steps=6, accumulate=1, precision="32-true"):
    x, y = batch(8 * steps * accumulate)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    logged = Logged()
    trainer = L.Trainer(max_steps=steps, accumulate_grad_batches=accumulate, precision=precision,
                        callbacks=[callback], logger=logged, log_every_n_steps=1, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                        devices=1)
    trainer.fit(module, loader)
    return logged


@pytest.mark.parametrize("accumulate", [1, 2])
def test_fit_records_lightning_keys(tmp_path, accumulate):
    module = Module()
    cb = ResdiagCallback(every=2, jsonl=tmp_path / "r.jsonl")
    logged = fit(module, cb, steps=6, accumulate=accumulate)
    assert [r.step for r in cb.history] == [0, 2, 4]
    assert {r.micro_batches for r in cb.history} == {accumulate}
    for rec in cb.history:
        want = module.lightning_norms[rec.step]
        got = rec.lightning()
        assert got.keys() == want.keys() and "grad_2.0_norm/model.stem.weight" in got
        for k, v in want.items():
            assert got[k] == pytest.approx(v, rel=1e-5), k
        assert rec.result.verdict.status in ("healthy", "inconclusive")
        assert all(math.isfinite(b.grad_norm) for b in rec.result.boundaries)
    for rec in cb.history:  # through log_dict, at the recorded step (Lightning repeats the
        # last value of a hook's metrics at the steps in between, as for its own grad_norm)
        sent = logged.seen[rec.step]
        assert sent["grad_2.0_norm/model.stem.weight"] == pytest.approx(
            module.lightning_norms[rec.step]["grad_2.0_norm/model.stem.weight"], rel=1e-5)
        assert sent["resdiag/boundary_ratio"] == pytest.approx(rec.result.summary.boundary_ratio, rel=1e-6)
    lines = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [d["step"] for d in lines] == [0, 2, 4]
    assert lines[0]["grad_flow"]["verdict"]["status"] == cb.history[0].result.verdict.status


@pytest.mark.slow  # torch.compile on the shared CPU: ~30 s
def test_no_orig_mod_under_compile():
    module = Module(compile_model=True)
    cb = ResdiagCallback(every=3)
    fit(module, cb, steps=1)
    keys = cb.history[0].lightning()
    assert "grad_2.0_norm/model.stem.weight" in keys
    assert not any("_orig_mod" in k for k in keys)


def test_bf16_norms_differ_from_lightnings_and_match_float64():
    """bf16-true: Lightning's grad_norm takes the norm in bf16; resdiag's equals the float64 norm of
    the same bf16 gradient (docs/api.md explains which is right)."""
    module = Module()
    cb = ResdiagCallback(every=1)
    grads = {}

    class Grab(L.Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            grads.update({f"grad_2.0_norm/{n}": p.grad.double().norm().item()
                          for n, p in pl_module.named_parameters()})

    x, y = batch(16)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    trainer = L.Trainer(max_steps=1, precision="bf16-true", callbacks=[cb, Grab()], logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", devices=1)
    trainer.fit(module, loader)
    rec = cb.history[0].lightning()
    theirs = module.lightning_norms[0]
    for k, exact in grads.items():
        assert rec[k] == pytest.approx(exact, rel=1e-12)
    assert max(abs(theirs[k] - grads[k]) / grads[k] for k in grads) > 1e-5


class GAN(L.LightningModule):
    """Manual optimization with two optimizers, as Lightning's GAN example: D's step, then G's, each
    a global step. ``applied`` keeps each optimizer's .grad norms right before its step."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        torch.manual_seed(0)
        self.G = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8))
        self.D = ResNetMLP(classes=1)
        self.applied: dict[int, dict[str, float]] = {}

    def training_step(self, b, i):
        x, _ = b
        g_opt, d_opt = self.optimizers()
        bce = nn.functional.binary_cross_entropy_with_logits
        z = torch.randn(len(x), 4)
        for opt, part, loss_of in (
            (d_opt, "D", lambda: bce(self.D(x), torch.ones(len(x), 1))
             + bce(self.D(self.G(z).detach()), torch.zeros(len(x), 1))),
            (g_opt, "G", lambda: bce(self.D(self.G(z)), torch.ones(len(x), 1))),
        ):
            opt.zero_grad()
            self.manual_backward(loss_of())
            self.applied[self.trainer.global_step] = {
                n: float(p.grad.double().norm()) for n, p in self.named_parameters()
                if n.startswith(part) and p.grad is not None}
            opt.step()

    def configure_optimizers(self):
        return [torch.optim.SGD(self.G.parameters(), lr=0.01), torch.optim.SGD(self.D.parameters(), lr=0.01)]


def test_manual_optimization_records_every_optimizers_step():
    cb = ResdiagCallback(every=1)
    module = GAN()
    fit(module, cb, steps=4)
    assert [r.step for r in cb.history] == [0, 1, 2, 3]
    for r in cb.history:  # D's steps are even, G's odd: each record holds what that optimizer applied
        for name, want in module.applied[r.step].items():
            assert r.param_norms[name] == pytest.approx(want, rel=1e-9), (r.step, name)


def test_validation_between_manual_optimization_batches_is_not_recorded():
    """After the last optimizer step of a batch the next record opens at once; a validation run
    before the next batch (val_check_interval) must not land in it."""

    class GANWithVal(GAN):
        def validation_step(self, b, i):
            self.D(b[0])

    cb = ResdiagCallback(every=1, features=True)
    module = GANWithVal()
    x, y = batch(32)
    data = torch.utils.data.TensorDataset(x, y)
    trainer = L.Trainer(max_steps=4, callbacks=[cb], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                        devices=1, val_check_interval=1, limit_val_batches=2, num_sanity_val_steps=0)
    trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=8),
                torch.utils.data.DataLoader(data, batch_size=8))
    rows = [len(r.rank.features) for r in cb.history]  # D's steps call D twice, G's once
    assert len(rows) == 4 and rows[0] == rows[2] and rows[1] == rows[3], rows

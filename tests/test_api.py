"""The Monitor API inside a real (tiny) training loop."""

import json
import math

import pytest
import torch
from torch import nn

from examples.user_models import TinyResNet
from resdiag.api import Monitor


def loop(monitor, model, steps=20):
    torch.manual_seed(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    recs, hooks_between = [], []
    for step in range(steps):
        x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 10, (8,))
        with monitor.record(step) as rec:
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            if rec is None:
                hooks_between.append(sum(len(m._forward_pre_hooks) for m in model.modules()))
            else:
                grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        if rec is not None:
            recs.append((rec, grads))
        opt.step()
        opt.zero_grad()
    return recs, hooks_between


def test_records_on_schedule_with_lightning_keys(tmp_path):
    model = TinyResNet()
    monitor = Monitor(model, every=10, jsonl=tmp_path / "r.jsonl", features=True)
    recs, hooks_between = loop(monitor, model)
    assert [r.step for r, _ in recs] == [0, 10]
    assert set(hooks_between) == {0}  # nothing installed between recorded steps
    for rec, grads in recs:
        keys = rec.lightning()
        for name, g in grads.items():
            want = float(torch.linalg.vector_norm(g))
            assert keys[f"grad_2.0_norm/{name}"] == pytest.approx(want, rel=1e-6)
        total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads.values()]))
        assert keys["grad_2.0_norm_total"] == pytest.approx(float(total), rel=1e-6)
        assert rec.result.layers[0].grad_norm == pytest.approx(
            float(grads["conv1.weight"].norm()), rel=1e-6)
        assert len(rec.result.boundaries) == 4 and rec.rank is not None
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [0, 10]
    assert json.loads(lines[0])["grad_flow"]["schema"] == "resdiag.grad-flow"


def test_report_plot_and_json(tmp_path, capsys):
    model = TinyResNet()
    monitor = Monitor(model, every=5)
    recs, _ = loop(monitor, model, steps=1)
    rec = recs[0][0]
    rec.report()
    assert "verdict" in capsys.readouterr().out
    rec.plot(tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 0
    assert json.loads(rec.to_json())["step"] == 0
    assert monitor.history[0].result == rec.result


def test_tensorboard_scalars(tmp_path):
    # tensorboard is in the test extra (pyproject.toml): missing, this must fail, not skip.
    model = TinyResNet()
    monitor = Monitor(model, every=1, tensorboard=tmp_path / "tb")
    loop(monitor, model, steps=2)
    monitor.close()
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "tb").iterdir())
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from resdiag.metrics.registry import GRAD_FLOW, of_probe

    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    rec = monitor.history[-1]
    expected = {f"resdiag/{m.name}" for m in of_probe(GRAD_FLOW)
                if math.isfinite(getattr(rec.result.summary, m.name))}
    assert expected and expected <= tags  # every registered grad-flow metric, from the one list
    last = events.Scalars("resdiag/boundary_ratio")[-1]
    assert last.step == rec.step and last.value == pytest.approx(rec.result.summary.boundary_ratio, rel=1e-6)


def test_bad_schedule():
    with pytest.raises(ValueError):
        Monitor(TinyResNet(), every=0)

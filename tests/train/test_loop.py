"""The loop: a resumed run repeats the uninterrupted one bit for bit; checkpoints are atomic."""

import json

import pytest
import torch

from resdiag.run.target import TargetSpec
from resdiag.train import Interrupted, run_training
from resdiag.train.log import read
from tests.train.conftest import options

RECIPE = {"steps": 10, "batch_size": 8}


def stop_at(step):
    def on_step(stats):
        if stats.step == step:
            raise KeyboardInterrupt

    return on_step


def steps_of(path):
    return [{k: v for k, v in x.items() if k != "time"} for x in read(path) if x["type"] == "step"]


def test_resume_repeats_the_uninterrupted_run(tmp_path, tiny):
    a, b = tmp_path / "a", tmp_path / "b"
    straight = run_training(TargetSpec(arch=tiny), RECIPE, options(a, record_every=4))
    with pytest.raises(Interrupted) as exc:  # Ctrl-C in step 6; the checkpoint of step 5 stays
        run_training(TargetSpec(arch=tiny), RECIPE, options(b, record_every=4, checkpoint_every=5),
                     on_step=stop_at(6))
    assert (exc.value.step, exc.value.checkpoint_step) == (6, 5)
    assert torch.load(b / "checkpoint.pt", weights_only=True)["step"] == 5
    resumed = run_training(None, {}, options(b, record_every=4), resume=b / "checkpoint.pt")
    assert resumed.start == 5 and resumed.last.loss == straight.last.loss
    wa = torch.load(a / "checkpoint.pt", weights_only=True)
    wb = torch.load(b / "checkpoint.pt", weights_only=True)
    assert wa["step"] == wb["step"] == 10
    for key, value in wa["model"].items():
        assert torch.equal(value, wb["model"][key]), key
    for key, value in wa["optimizer"]["state"].items():
        assert torch.equal(value["momentum_buffer"], wb["optimizer"]["state"][key]["momentum_buffer"])
    assert steps_of(a / "train.jsonl") == steps_of(b / "train.jsonl")  # the repeated step 5 once
    kinds = [(x["type"], x["step"]) for x in read(b / "train.jsonl")]
    assert kinds.count(("start", 0)) == 1 and ("start", 5) in kinds and kinds[-1] == ("end", 10)
    assert [s for t, s in kinds if t == "probe"] == [0, 4, 8, 9]  # every 4 steps, and the last


def test_a_kill_while_saving_leaves_the_previous_checkpoint(tmp_path, tiny, monkeypatch):
    out = tmp_path / "run"
    run_training(TargetSpec(arch=tiny), {"steps": 2, "batch_size": 8}, options(out))
    before = (out / "checkpoint.pt").read_bytes()

    def killed(src, dst):
        raise KeyboardInterrupt  # the process dies between writing the temp file and renaming it

    monkeypatch.setattr("resdiag.writes.os.replace", killed)
    with pytest.raises(Interrupted) as exc:
        run_training(TargetSpec(arch=tiny), {"steps": 2, "batch_size": 8}, options(out, overwrite=True))
    assert exc.value.checkpoint_step is None
    assert (out / "checkpoint.pt").read_bytes() == before
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []


def test_records_every_line_as_documented(tmp_path, tiny):
    result = run_training(TargetSpec(arch=tiny), {"steps": 3, "batch_size": 8},
                          options(tmp_path, features=True, plots=True, record_every=2))
    lines = [json.loads(t) for t in (tmp_path / "train.jsonl").read_text().splitlines()]
    assert lines == json.loads(json.dumps(list(result.lines)))  # what rank 0 returns is what it wrote
    assert [(x["type"], x["step"]) for x in lines] == [
        ("start", 0), ("step", 0), ("probe", 0), ("step", 1), ("step", 2), ("probe", 2), ("end", 3)]
    start, step, probe = lines[0], lines[1], lines[2]
    assert start["schema"] == "resdiag.train" and start["config"]["lr"] == 0.1
    assert start["model"]["name"] == "resnet8" and start["world_size"] == 1
    assert set(step) == {"type", "step", "lr", "loss", "error", "time"} and 0 <= step["error"] <= 1
    assert probe["grad_flow"]["schema"] == "resdiag.grad-flow" and probe["rank"]["schema"] == "resdiag.rank"
    assert len(probe["grad_flow"]["boundaries"]) == 4 and "grad_2.0_norm_total" in probe["lightning"]
    for name in ("loss.png", "gradflow.png", "rank.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"

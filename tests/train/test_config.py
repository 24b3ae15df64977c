"""The recipe and its schedule (He et al. 2015, section 4.2), scaled to a budget of steps."""

import pytest

from resdiag.errors import ResdiagError
from resdiag.train.config import TrainConfig, make_config, merge_resumed
from resdiag.train.schedule import lr_at, milestone_steps


def test_defaults_are_he_et_al():
    cfg = make_config(depth=20)
    assert (cfg.lr, cfg.momentum, cfg.weight_decay, cfg.batch_size) == (0.1, 0.9, 1e-4, 128)
    assert cfg.milestones == (0.5, 0.75) and cfg.warmup_steps == 0


def test_warmup_only_for_very_deep_nets():
    assert make_config(depth=110, steps=1000).warmup_steps == 10  # ~1% of the budget
    assert make_config(depth=1202, steps=50).warmup_steps == 1
    assert make_config(depth=56, steps=1000).warmup_steps == 0
    assert make_config(depth=None, steps=1000).warmup_steps == 0  # a user's model: unknown depth
    assert make_config(depth=20, steps=1000, warmup_steps=3).warmup_steps == 3


def test_schedule_divides_by_ten_at_half_and_three_quarters():
    cfg = make_config(depth=110, steps=200)
    assert milestone_steps(cfg) == (100, 150)
    lrs = [lr_at(s, cfg) for s in range(200)]
    assert lrs[:2] == [0.01, 0.01] and lrs[2] == 0.1 and lrs[99] == 0.1
    assert lrs[100] == pytest.approx(0.01) and lrs[149] == pytest.approx(0.01)
    assert lrs[150] == pytest.approx(0.001) and lrs[199] == pytest.approx(0.001)


@pytest.mark.parametrize("given, message", [
    ({"steps": 0}, "--steps"),
    ({"lr": -1.0}, "--lr"),
    ({"lr": float("nan")}, "--lr"),
    ({"steps": 10, "warmup_steps": 10}, "--warmup-steps"),
    ({"batch_size": 4096, "data": "synthetic"}, "synthetic set"),
])
def test_bad_recipes(given, message):
    with pytest.raises(ResdiagError, match=message):
        make_config(depth=20, **given)


def test_round_trip_and_resume_merge():
    cfg = make_config(depth=20, steps=30, seed=3)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert merge_resumed(cfg, {"steps": 30, "lr": None}) == cfg
    with pytest.raises(ResdiagError, match="--steps 40 .checkpoint: 30"):
        merge_resumed(cfg, {"steps": 40})

import json
import math

import pytest
import torch

from resdiag.errors import ResdiagError
from resdiag.results import RankResult
from resdiag.run.checkpoint import load_checkpoint
from resdiag.run.inputs import InputSpec
from resdiag.run.rank import rank, run_rank
from resdiag.run.target import TargetSpec, build_target
from resdiag.zoo import build, resolve


def tiny(name="resnet8", **kw):
    return resolve(name, width=0.25, input_shape=(3, 8, 8), **kw)


def test_rank_result_and_round_trip():
    r = run_rank(TargetSpec(arch=tiny()), batch_size=16, device="cpu")
    assert len(r.weights) == 8 and len(r.features) == 4
    assert r.run.mode == "train" and r.checkpoint is None
    assert 0 < r.summary.feature_erank_ratio_first <= 1
    d = json.loads(r.to_json())
    assert d["schema"] == "resdiag.rank"
    assert RankResult.from_dict(d) == r
    assert run_rank(TargetSpec(arch=tiny()), batch_size=16, device="cpu").to_json() == r.to_json()


def test_deep_plain_mlp_collapses_and_residual_does_not():
    plain = run_rank(TargetSpec(arch=resolve("plain_mlp", 256, width=32, input_shape=(16,))), batch_size=64,
                     device="cpu")
    res = run_rank(TargetSpec(arch=resolve("mlp", 256, width=32, input_shape=(16,))), batch_size=64,
                   device="cpu")
    assert plain.summary.feature_erank_retention < res.summary.feature_erank_retention
    assert plain.verdict.status == "collapse" and res.verdict.status == "healthy"


def test_slices_convention_shapes():
    r = run_rank(TargetSpec(arch=tiny()), batch_size=4, device="cpu", conv="slices")
    conv = next(w for w in r.weights if w.kind == "conv" and w.shape[2] == 3)
    assert conv.num_matrices == 9 and conv.matrix_shape == tuple(sorted(conv.shape[:2], reverse=True))


def test_checkpoint_round_trip_and_mode(tmp_path):
    cfg = tiny()
    torch.manual_seed(5)
    trained = build(cfg)
    with torch.no_grad():
        trained.fc.weight.mul_(0)  # a rank-0 layer, so the checkpoint is visibly not the init
    path = tmp_path / "ck.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in trained.state_dict().items()}}, path)
    r = run_rank(TargetSpec(arch=cfg, checkpoint=path), batch_size=8, device="cpu")
    assert r.run.mode == "eval" and r.checkpoint == str(path)
    fc = r.weights[-1]
    assert fc.erank == 0 and fc.numerical_rank == 0
    assert r.verdict.status == "collapse"
    assert any(f.rule == "weights.erank" for f in r.verdict.findings)


@pytest.mark.parametrize("case", ["missing", "truncated", "other_arch", "not_state_dict", "bad_shape"])
def test_bad_checkpoints(tmp_path, case):
    cfg = tiny()
    model = build(cfg)
    path = tmp_path / "ck.pt"
    if case == "truncated":
        torch.save(model.state_dict(), path)
        path.write_bytes(path.read_bytes()[:200])
    elif case == "other_arch":
        torch.save(build(resolve("mlp", 2, width=8)).state_dict(), path)
    elif case == "not_state_dict":
        torch.save([1, 2, 3], path)
    elif case == "bad_shape":
        sd = model.state_dict()
        sd["fc.weight"] = torch.zeros(3, 3)
        torch.save(sd, path)
    with pytest.raises(ResdiagError) as exc:
        load_checkpoint(model, path)
    msg = str(exc.value)
    assert "\n" not in msg
    if case == "other_arch":
        assert "missing" in msg and "unexpected" in msg
    if case == "bad_shape":
        assert "fc.weight" in msg


def test_non_finite_weights_are_a_finding():
    cfg = tiny()
    model = build(cfg)
    with torch.no_grad():
        model.stage2[0].branch.conv1.weight[0, 0, 0, 0] = math.nan
    target = build_target(TargetSpec(module=model, inputs=InputSpec(shape=cfg.input_shape)))
    r = rank(target, batch_size=4, device="cpu")
    assert r.verdict.status == "non_finite"
    assert any("stage2.0.branch.conv1" in f.message for f in r.verdict.findings)


def test_bad_arguments():
    with pytest.raises(ResdiagError, match=">= 2"):
        run_rank(TargetSpec(arch=tiny()), batch_size=1, device="cpu")
    with pytest.raises(ResdiagError, match="--conv"):
        run_rank(TargetSpec(arch=tiny()), batch_size=4, conv="diag", device="cpu")

"""`--model package.module:factory` from the command line."""

import json
from pathlib import Path

import pytest

from resdiag.cli.app import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _at_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # --model imports from the current directory, as a user's shell would


def run(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


@pytest.mark.parametrize("factory", ["torchvision_style_resnet", "twice_called"])
def test_user_model_grad_flow_and_rank(tmp_path, capsys, factory):
    j = tmp_path / "g.json"
    code, out, err = run(capsys, "grad-flow", "--model", f"examples.user_models:{factory}",
                         "--input-shape", "3,8,8", "-k", "1", "-b", "4", "--device", "cpu", "--json", str(j))
    assert code == 0, err
    d = json.loads(j.read_text())
    assert d["model"]["family"] == "custom" and d["model"]["name"] == f"examples.user_models:{factory}"
    assert len(d["boundaries"]) >= 3 and all(layer["has_grad"] for layer in d["layers"])
    code, _, err = run(capsys, "rank", "--model", f"examples.user_models:{factory}",
                       "--input-shape", "3,8,8", "-b", "8", "--device", "cpu")
    assert code == 0, err


@pytest.mark.parametrize("factory", ["checkpointed_resnet", "checkpointed_resnet_reentrant"])
def test_grad_flow_under_activation_checkpointing_equals_the_plain_model(tmp_path, capsys, factory):
    """Every block recomputed in backward: no extra boundary, no NaN, the plain model's norms."""
    out = {}
    for name in ("torchvision_style_resnet", factory):
        j = tmp_path / f"{name}.json"
        code, _, err = run(capsys, "grad-flow", "--model", f"examples.user_models:{name}", "--input-shape",
                           "3,8,8", "-k", "2", "-b", "4", "--device", "cpu", "--json", str(j))
        assert code == 0, err
        out[name] = json.loads(j.read_text())
    plain, ckpt = out["torchvision_style_resnet"], out[factory]
    assert [b["name"] for b in ckpt["boundaries"]] == [b["name"] for b in plain["boundaries"]]
    assert len(ckpt["boundaries"]) == 4 and ckpt["verdict"]["status"] == plain["verdict"]["status"]
    for key in ("boundaries", "layers"):
        for got, want in zip(ckpt[key], plain[key], strict=True):
            assert got["grad_norm"] == pytest.approx(want["grad_norm"], rel=1e-5), got["name"]


BAD = [
    (["--model", "no_such_pkg.mod:f"], "cannot import no_such_pkg.mod"),
    (["--model", "examples.user_models"], "package.module:factory"),
    (["--model", "examples.user_models:nope"], "has no attribute"),
    (["--model", "examples.user_models:NOT_CALLABLE"], "not a callable"),
    (["--model", "examples.user_models:not_a_module"], "not an nn.Module"),
    (["--model", "examples.user_models:broken"], "weights server unreachable"),
    (["--model", "examples.user_models:torchvision_style_resnet", "--input-shape", "5,8,8"],
     "forward fails on input shape 5,8,8"),
    (["--model", "examples.user_models:torchvision_style_resnet", "--num-classes", "7"], "10 classes"),
    (["--model", "examples.user_models:twice_called", "--arch", "resnet20"], "only apply to the zoo"),
    (["--model", "examples.user_models:twice_called", "--blocks", "("], "regular expression"),
]


@pytest.mark.parametrize("extra, message", BAD, ids=[m for _, m in BAD])
def test_bad_user_models(tmp_path, capsys, extra, message):
    j = tmp_path / "o.json"
    code, _, err = run(capsys, "grad-flow", *extra, "-k", "1", "-b", "2", "--device", "cpu", "--json", str(j))
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not j.exists()

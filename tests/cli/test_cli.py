import json
import math
import subprocess
import sys

import pytest

from resdiag.cli.app import main
from resdiag.diagnosis.thresholds import GradThresholds, RankThresholds

TINY = ["--arch", "resnet8", "--width", "0.25", "--input-shape", "3,8,8", "-k", "1", "-b", "4",
        "--device", "cpu"]


def run(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def test_grad_flow_end_to_end(tmp_path, capsys):
    j, p = tmp_path / "out.json", tmp_path / "out.png"
    code, out, err = run(capsys, "grad-flow", *TINY, "--plain", "--json", str(j), "--plot", str(p))
    assert code == 0, err
    assert "verdict" in out and "plain8" in out
    d = json.loads(j.read_text())
    assert len(d["layers"]) == 8 and len(d["boundaries"]) == 4
    # plain8 has 3 blocks: even the steepest per-block growth calibrated for plain nets with BN
    # (1.44, docs/calibration.md) gives 1.44^3 = 3 end to end, orders of magnitude inside every
    # default bound, so the rules (resdiag/diagnosis/gradflow.py) must find nothing.
    s, t = d["summary"], GradThresholds()
    assert t.vanish_ratio < s["boundary_ratio"] < t.explode_ratio
    assert t.vanish_ratio < math.exp(3 * s["log_growth_per_block"]) < t.explode_ratio
    assert t.at_vanish_ratio < s["weight_first_last_ratio"] < t.at_explode_ratio
    assert d["verdict"]["status"] == "healthy" and d["verdict"]["findings"] == []
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_writes_both_twins(tmp_path, capsys):
    j, s = tmp_path / "c.json", tmp_path / "c.svg"
    code, out, _ = run(capsys, "grad-flow", *TINY, "--compare", "--json", str(j), "--plot", str(s))
    assert code == 0
    names = [r["model"]["name"] for r in json.loads(j.read_text())["results"]]
    assert names == ["plain8", "resnet8"]
    assert s.read_text().lstrip().startswith("<?xml")


def test_strict_exit_code(capsys):
    code, _, _ = run(capsys, "grad-flow", *TINY, "--strict", "--explode-ratio", "1.0000001",
                     "--vanish-ratio", "1")
    assert code == 1


BAD = [
    (["grad-flow", "--depth", "57"], "try 56 or 62"),
    (["grad-flow", "--arch", "resnet_x"], "unknown architecture"),
    (["grad-flow", "--shortcut", "scale:"], "shortcut"),
    (["grad-flow", "--depth", "x"], "--depth"),
    (["grad-flow", "--data", "cifar10:/no/such/dir"], "not found"),
    (["grad-flow", "--batch-size", "0", *TINY[:6]], ">= 1"),
    (["grad-flow", "--placement", "sideways"], "placement"),
    (["grad-flow", "--arch", "mlp", "--projection", "B"], "does not apply"),
    (["grad-flow", "--plain", "--shortcut", "gate"], "no shortcut"),
    (["grad-flow", "--bogus"], "No such option"),
    (["no-such-command"], "No such command"),
]


@pytest.mark.parametrize("args, message", BAD, ids=lambda a: " ".join(a) if isinstance(a, list) else "")
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, args, message):
    j, p = tmp_path / "o.json", tmp_path / "o.png"
    code, out, err = run(capsys, *args, "--json", str(j), "--plot", str(p))
    assert code == 2
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not j.exists() and not p.exists()
    assert list(tmp_path.iterdir()) == []


def test_cuda_without_cuda(capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # on any machine
    code, _, err = run(capsys, "grad-flow", *TINY[:-2], "--device", "cuda")
    assert code == 2 and "CUDA is not available" in err


def test_help_does_not_import_torch():
    code = "import sys; from resdiag.cli.app import main\ntry: main(['--help'])\nexcept SystemExit: pass\n" \
           "assert 'torch' not in sys.modules, 'torch imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "grad-flow" in proc.stdout


def test_models_lists_registry(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0 and "resnet1202" in out and "preact_resnet164" in out and "19.42M" in out


def test_python_dash_m(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "resdiag", "grad-flow", "--depth", "57"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("resdiag: error:")


def test_rank_end_to_end(tmp_path, capsys):
    j, p = tmp_path / "r.json", tmp_path / "r.png"
    args = [a for a in TINY if a not in ("-k", "1")]
    code, out, err = run(capsys, "rank", *args, "--plain", "--json", str(j), "--plot", str(p))
    assert code == 0, err
    d = json.loads(j.read_text())
    assert d["schema"] == "resdiag.rank" and len(d["weights"]) == 8 and len(d["features"]) == 4
    # Three BN blocks keep the features' rank: the rules' thresholds (RankThresholds) are far away.
    s, t = d["summary"], RankThresholds()
    assert s["feature_erank_retention"] > t.feature_retention
    assert s["rank1_distance_last"] > t.rank1_distance
    assert s["weight_erank_ratio_min"] > t.weight_erank_ratio
    assert d["verdict"]["status"] == "healthy" and d["verdict"]["findings"] == []
    assert p.read_bytes()[:4] == b"\x89PNG"


def test_rank_compare(tmp_path, capsys):
    j = tmp_path / "c.json"
    args = [a for a in TINY if a not in ("-k", "1")]
    code, _, _ = run(capsys, "rank", *args, "--compare", "--json", str(j))
    assert code == 0
    assert [r["model"]["name"] for r in json.loads(j.read_text())["results"]] == ["plain8", "resnet8"]


RANK_BAD = [
    (["rank", "--checkpoint", "/no/such.pt"], "checkpoint not found"),
    (["rank", "--conv", "diagonal", *TINY[:6]], "--conv"),
    (["rank", "--batch-size", "1", *TINY[:6]], ">= 2"),
    (["rank", "--rtol", "-1", *TINY[:6]], "--rtol"),
    (["rank", "--compare", "--checkpoint", "x.pt"], "--compare"),
]


@pytest.mark.parametrize("args, message", RANK_BAD, ids=lambda a: " ".join(a) if isinstance(a, list) else "")
def test_rank_bad_input(tmp_path, capsys, args, message):
    j = tmp_path / "o.json"
    code, _, err = run(capsys, *args, "--json", str(j))
    assert code == 2 and err.count("\n") == 1 and message in err
    assert not j.exists()


def test_rank_mismatched_checkpoint_names_keys(tmp_path, capsys):
    import torch

    from resdiag.zoo import build, resolve

    ck = tmp_path / "mlp.pt"
    torch.save(build(resolve("mlp", 2, width=8)).state_dict(), ck)
    code, _, err = run(capsys, "rank", *TINY[:6], "--checkpoint", str(ck))
    assert code == 2 and "missing" in err and "unexpected" in err and "stem.conv.weight" in err

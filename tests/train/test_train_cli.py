"""`resdiag train` from the command line: a run, its resumption, and bad input."""

from pathlib import Path

import pytest
import torch

from resdiag.cli.app import main
from tests.train.conftest import TINY_ARGS


def run(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished 2-step run of the tiny ResNet, shared by the tests below (read-only)."""
    out = tmp_path_factory.mktemp("run")
    with pytest.raises(SystemExit) as exc:
        main(["train", *TINY_ARGS, "--steps", "2", "--no-features", "--out", str(out)])
    assert exc.value.code == 0
    return out


def test_run_writes_lines_figures_and_a_checkpoint(finished, capsys):
    names = sorted(p.name for p in finished.iterdir())
    assert names == ["checkpoint.pt", "gradflow.png", "loss.png", "train.jsonl"]  # no rank.png
    saved = torch.load(finished / "checkpoint.pt", weights_only=True)
    assert saved["step"] == 2 and saved["identity"]["name"] == "resnet8"
    # the checkpoint is a state dict for the other commands too
    code, out, err = run(capsys, "grad-flow", *TINY_ARGS, "-k", "1", "--checkpoint",
                         str(finished / "checkpoint.pt"))
    assert code == 0, err


def test_resuming_a_finished_run_runs_nothing(finished, tmp_path, capsys):
    code, out, err = run(capsys, "train", "--resume", str(finished / "checkpoint.pt"), "--device", "cpu",
                         "--no-features", "--out", str(tmp_path))
    assert code == 0, err
    assert "nothing to run: the checkpoint is at step 2 of 2" in out
    assert "wrote" in out and (tmp_path / "checkpoint.pt").exists()


BAD = [
    (["--arch", "resnet_x"], "unknown architecture"),
    (["--depth", "57"], "try 56 or 62"),
    (["--input-shape", "3,a,8"], "--input-shape"),
    ([*TINY_ARGS, "--steps", "0"], "--steps must be >= 1"),
    ([*TINY_ARGS, "--warmup-steps", "5", "--steps", "5"], "--warmup-steps"),
    ([*TINY_ARGS, "-b", "1"], "BatchNorm"),
    ([*TINY_ARGS, "--record-every", "0"], "--record-every"),
    ([*TINY_ARGS, "--data", "cifar10:/no/such/dir"], "not found"),
    ([*TINY_ARGS, "--data", "imagenet"], "unknown data"),
    ([*TINY_ARGS, "--model", "examples.user_models:TinyResNet"], "only apply to the zoo"),
    (["--resume", "/no/such/checkpoint.pt"], "no such file"),
    ([*TINY_ARGS, "--checkpoint", "/no/such.pt"], "checkpoint not found"),
    (["--model", "examples.user_models:torchvision_style_resnet", "--input-shape", "5,8,8"],
     "forward fails on input shape 5,8,8"),
    (["--arch", "resnet8", "--width", "0.25", "--data", "cifar10:{cifar}"], "fewer than --batch-size"),
    (["--arch", "resnet8", "--width", "0.25", "--input-shape", "3,8,8", "--data", "cifar10:{cifar}"],
     "3,32,32"),
]


@pytest.mark.parametrize("args, message", BAD, ids=[m for _, m in BAD])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, args, message, monkeypatch):
    from tests.support import write_cifar

    if any("{cifar}" in a for a in args):
        (tmp_path / "c").mkdir()
        write_cifar(tmp_path / "c", n=2)
        args = [a.format(cifar=tmp_path / "c") for a in args]
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # --model imports from the current folder
    out = tmp_path / "out"
    code, _, err = run(capsys, "train", *args, "--out", str(out))
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_checkpoint_of_another_model(finished, tmp_path, capsys):
    resume = ["--resume", str(finished / "checkpoint.pt")]
    cases = [
        ([*resume, "--arch", "plain8", "--width", "0.25", "--input-shape", "3,8,8"], "written for resnet8"),
        ([*resume, "--steps", "7"], "--steps 7 (checkpoint: 2)"),
        ([*resume, "--checkpoint", str(finished / "checkpoint.pt")], "give one"),
        (["--arch", "resnet14", "--width", "0.25", "--input-shape", "3,8,8", "--checkpoint",
          str(finished / "checkpoint.pt")], "written by 'resdiag train' for resnet8"),
    ]
    for args, message in cases:
        out = tmp_path / "out"
        code, _, err = run(capsys, "train", *args, "--device", "cpu", "--out", str(out))
        assert code == 2 and err.count("\n") == 1 and message in err, (args, err)
        assert not out.exists()


def test_out_must_be_a_folder_without_another_run(finished, tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    code, _, err = run(capsys, "train", *TINY_ARGS, "--out", str(tmp_path / "f"))
    assert code == 2 and "is a file" in err
    before = sorted(p.name for p in finished.iterdir())
    code, _, err = run(capsys, "train", *TINY_ARGS, "--out", str(finished))
    assert code == 2 and "already holds a run" in err and "--resume" in err
    assert sorted(p.name for p in finished.iterdir()) == before

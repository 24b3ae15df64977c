"""Issue 13, the run folder's contract (resdiag/train/folder.py, docs/security.md): a run that stops
before its first checkpoint keeps nothing; from the first checkpoint on the folder is resumable
state; a line of train.jsonl is never torn by Ctrl-C or SIGTERM; the user's prints go to stderr."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import pytest

from resdiag.train import RunOptions, run_training
from resdiag.train.log import RunLog, read
from resdiag.train.loop import Interrupted
from tests.helpers import invoke, invoke_out
from tests.train.conftest import TINY_ARGS

ROOT = Path(__file__).resolve().parents[2]
TWO = [*TINY_ARGS, "--steps", "2", "--no-features"]


def listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def spec():
    from resdiag.run.target import TargetSpec
    from resdiag.zoo import resolve

    return TargetSpec(arch=resolve("resnet8", width=0.25, input_shape=(3, 8, 8)))


def test_a_user_models_prints_go_to_stderr(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, err = invoke_out(["train", "--model", "tests.run.factories:chatty", "--input-shape", "8",
                                 "--data", "synthetic", "--steps", "2", "-b", "8", "--device", "cpu",
                                 "--no-features", "--out", str(tmp_path / "run")])
    assert code == 0, err
    assert "user model" not in out and out.startswith("2 steps") and "wrote" in out
    assert "user model: built" in err and "user model: forward" in err


@pytest.mark.parametrize("stop", [RuntimeError("a bug in step 0"), KeyboardInterrupt()],
                         ids=["error", "ctrl-c"])
@pytest.mark.parametrize("existing", [False, True], ids=["new folder", "empty folder"])
def test_a_run_stopped_before_its_first_checkpoint_keeps_nothing(tmp_path, stop, existing):
    out = tmp_path / "run"
    if existing:
        out.mkdir()

    def stopped(stats):
        raise stop  # after step 0 wrote its line, before the checkpoint of step 2

    with pytest.raises(type(stop) if isinstance(stop, RuntimeError) else Interrupted):
        run_training(spec(), {"steps": 2, "batch_size": 8}, RunOptions(out, checkpoint_every=2, plots=False,
                     features=False, device="cpu"), on_step=stopped)
    assert listing(tmp_path) == {} and out.exists() == existing


def test_a_run_stopped_after_its_first_checkpoint_keeps_a_resumable_folder(tmp_path):
    out = tmp_path / "run"

    def stopped(stats):
        if stats.step == 2:
            raise KeyboardInterrupt  # step 2 is logged; the checkpoint holds step 2 (steps 0 and 1)

    with pytest.raises(Interrupted) as exc:
        run_training(spec(), {"steps": 4, "batch_size": 8}, RunOptions(out, checkpoint_every=2, plots=False,
                     features=False, device="cpu"), on_step=stopped)
    assert exc.value.checkpoint_step == 2
    assert sorted(listing(out)) == ["checkpoint.pt", "train.jsonl"]
    code, err = invoke(["train", "--resume", str(out / "checkpoint.pt"), "--device", "cpu", "--no-features",
                        "--out", str(out)])
    assert code == 0, err
    steps = [x["step"] for x in read(out / "train.jsonl") if x["type"] == "step"]
    assert steps == [0, 1, 2, 3]  # the interrupted step 2 was dropped and done again, once


def test_ctrl_c_in_the_middle_of_a_line_leaves_the_line_whole(tmp_path, default_sigint):
    log = RunLog(tmp_path / "train.jsonl")
    log.open(None)

    class Slow:
        """A file whose write is interrupted half-way through the text (Ctrl-C at the worst time)."""

        def __init__(self, fh):
            self.fh = fh

        def write(self, text):
            self.fh.write(text[: len(text) // 2])
            signal.raise_signal(signal.SIGINT)
            self.fh.write(text[len(text) // 2:])

        def flush(self):
            self.fh.flush()

        def close(self):
            self.fh.close()

    log._files[0] = Slow(log._files[0])
    with pytest.raises(KeyboardInterrupt):
        log.write({"type": "step", "step": 0, "loss": 2.5})
    log.close()
    text = (tmp_path / "train.jsonl").read_text()
    assert text.endswith("\n") and json.loads(text) == {"type": "step", "step": 0, "loss": 2.5}


def test_sigterm_between_steps_exits_143_with_a_resumable_folder(tmp_path, monkeypatch):
    import resdiag.train.loop as loop

    real = loop._step

    def step(job, s, clock):
        if s == 3:
            signal.raise_signal(signal.SIGTERM)
        return real(job, s, clock)

    monkeypatch.setattr(loop, "_step", step)
    out = tmp_path / "run"
    code, err = invoke(["train", *TINY_ARGS, "--steps", "4", "--checkpoint-every", "2", "--no-features",
                        "--out", str(out)])
    assert code == 143 and "--resume" in err, err
    assert sorted(listing(out)) == ["checkpoint.pt", "train.jsonl"]  # no temporary file
    assert all(json.loads(line) for line in (out / "train.jsonl").read_text().splitlines())


@pytest.mark.parametrize("flag", ["--checkpoint", "--resume"])
def test_an_input_inside_the_folder_the_run_replaces_is_refused(tmp_path, flag):
    out = tmp_path / "run"  # a finished run's files (refused before any is read, so stand-ins do)
    out.mkdir()
    for name in ("checkpoint.pt", "train.jsonl", "gradflow.png"):
        (out / name).write_bytes(name.encode())
    keep = tmp_path / "keep.pt"
    keep.hardlink_to(out / "checkpoint.pt")  # the same file under another name
    before = listing(tmp_path)
    # (--resume of the folder's own checkpoint, under any name, continues that run: not refused)
    given = (out / "checkpoint.pt", keep) if flag == "--checkpoint" else ()
    for path in (*given, out / "gradflow.png", out / "train.jsonl"):
        code, err = invoke(["train", *TWO, flag, str(path), "--out", str(out), "--overwrite"])
        assert code == 2 and "replaces or deletes" in err, (path, err)
    assert listing(tmp_path) == before


def test_the_rank_log_folder_is_checked_before_any_work(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("RESDIAG_RANK_LOG", str(tmp_path / "file"))
    monkeypatch.setattr(sys.modules["resdiag.train.run_training"], "build_target",
                        lambda *a, **k: pytest.fail("the model was built"))
    code, err = invoke(["train", *TWO, "--out", str(tmp_path / "run")])
    assert code == 2 and "RESDIAG_RANK_LOG" in err, err
    assert not (tmp_path / "run").exists()

"""Issue 13, in-process: outputs all-or-nothing, writability checked before the work, a closed
stdout, SIGTERM, the train run folder (lock, --overwrite), sweep cells keyed on their settings.
The subprocess cases (a real pipe, a real signal, a stray thread) are in test_process_faults.py."""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

import resdiag.run.gradflow as gradflow_mod
from resdiag.cli.app import main
from tests.helpers import invoke, invoke_out

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--arch", "resnet8", "--width", "0.25", "--input-shape", "3,8,8", "--batch-size", "4",
        "--batches", "1", "--device", "cpu"]
CONFIG = 'seed = 0\n[[models]]\nname = "a"\narch = "resnet8"\nwidth = 0.25\ninput_shape = [3, 8, 8]\n' \
         'batch_size = 4\nbatches = 1\nrank_batch_size = 8\n'


def listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def failing_mkstemp(prefix_start: str, err: int):
    """tempfile.mkstemp that fails with ``err`` for temp files whose prefix starts with ``prefix_start``
    (a full disk or a read-only folder for that one file), and works for every other."""
    real = tempfile.mkstemp

    def mkstemp(*a, **k):
        if str(k.get("prefix", "")).startswith(prefix_start):
            raise OSError(err, os.strerror(err))
        return real(*a, **k)

    return mkstemp


def test_a_full_disk_on_the_second_output_writes_neither(tmp_path, monkeypatch):
    monkeypatch.setattr("resdiag.writes.tempfile.mkstemp", failing_mkstemp(".p.png.", errno.ENOSPC))
    code, err = invoke(["grad-flow", *TINY, "--json", str(tmp_path / "ok.json"),
                        "--plot", str(tmp_path / "p.png")])
    assert code == 2 and err.count("\n") == 1, err
    assert "p.png" in err and "No space left" in err
    assert listing(tmp_path) == {}  # neither file, and no temporary file


def test_an_unwritable_folder_is_refused_before_any_work(tmp_path, monkeypatch):
    (tmp_path / "ro").mkdir()
    monkeypatch.setattr("resdiag.paths.tempfile.mkstemp", failing_mkstemp(".resdiag-probe.", errno.EROFS))

    def never(*a, **k):
        raise AssertionError("the model ran although an output cannot be written")

    monkeypatch.setattr(gradflow_mod, "build_for", never)
    code, err = invoke(["grad-flow", *TINY, "--json", str(tmp_path / "ok.json"),
                        "--plot", str(tmp_path / "ro" / "p.png")])
    assert code == 2 and "cannot write in" in err and "Read-only" in err, err
    assert listing(tmp_path) == {}


def test_update_baseline_keeps_the_old_baseline_when_junit_cannot_be_written(tmp_path, monkeypatch):
    cfg, base = tmp_path / "c.toml", tmp_path / "b.json"
    cfg.write_text(CONFIG)
    base.write_text("old baseline\n")
    monkeypatch.setattr("resdiag.writes.tempfile.mkstemp", failing_mkstemp(".j.xml.", errno.ENOSPC))
    code, err = invoke(["check", "--config", str(cfg), "--baseline", str(base), "--update-baseline",
                        "--junitxml", str(tmp_path / "j.xml")])
    assert code == 2 and "j.xml" in err, err
    assert base.read_text() == "old baseline\n" and sorted(listing(tmp_path)) == ["b.json", "c.toml"]


@pytest.mark.parametrize("summary, message", [("folder", "is a folder"), ("j.xml", "both name")])
def test_step_summary_checked_before_the_gates_run(tmp_path, monkeypatch, summary, message):
    (tmp_path / "folder").mkdir()
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / summary))
    monkeypatch.setattr("resdiag.check.runner.run_model", lambda *a, **k: pytest.fail("gates ran"))
    code, err = invoke(["check", "--config", str(cfg), "--format", "github",
                        "--junitxml", str(tmp_path / "j.xml")])
    assert code == 2 and message in err, err


def test_check_json_stdout_is_only_json_when_the_model_prints(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    cfg = tmp_path / "c.toml"
    cfg.write_text('seed = 0\n[[models]]\nname = "chatty"\nmodel = "tests.run.factories:chatty"\n'
                   'input_shape = [8]\nbatch_size = 4\nbatches = 1\nrank_batch_size = 8\n')
    code, out, err = invoke_out(["check", "--config", str(cfg), "--format", "json"])
    assert code in (0, 1), err
    assert json.loads(out)["schema"] == "resdiag.check"  # nothing but the JSON
    assert "user model: built" in err and "user model: forward" in err


class ClosedPipe(io.StringIO):
    """A stdout whose reader has gone (``| head`` after its lines)."""

    def write(self, text):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


def run_closed(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with redirect_stdout(ClosedPipe()), redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exc:
            return exc.code, err.getvalue()
    return 0, err.getvalue()


def test_a_closed_stdout_loses_no_file_and_keeps_the_exit_code(tmp_path):
    code, err = run_closed(["grad-flow", *TINY, "--json", str(tmp_path / "o.json"), "--plot",
                            str(tmp_path / "p.png")])
    assert code == 0 and err == "", err
    assert json.loads((tmp_path / "o.json").read_text())["schema"] == "resdiag.grad-flow"
    assert (tmp_path / "p.png").stat().st_size > 0
    code, err = run_closed(["grad-flow", *TINY, "--strict", "--vanish-ratio", "0.99",
                            "--explode-ratio", "1.01"])
    assert code in (0, 1) and "Traceback" not in err  # --strict's own verdict, never rich's exit 1


def test_sigterm_is_a_clean_exit_143_that_writes_nothing(tmp_path, monkeypatch):
    out = tmp_path / "o.json"
    out.write_text("old\n")

    def terminated(*a, **k):
        signal.raise_signal(signal.SIGTERM)  # delivered to this process; main's handler turns it
        pytest.fail("SIGTERM did not stop the command")

    monkeypatch.setattr(gradflow_mod, "build_for", terminated)
    before = signal.getsignal(signal.SIGTERM)
    code, err = invoke(["grad-flow", *TINY, "--json", str(out)])
    assert code == 143 and err == "resdiag: terminated\n"
    assert listing(tmp_path) == {"o.json": b"old\n"}
    assert signal.getsignal(signal.SIGTERM) is before  # the command's handler is gone after it


# ----------------------------------------------------------------------------- train run folder

def test_train_refuses_a_folder_another_train_holds(tmp_path, tiny_train):
    from resdiag.train.folder import _lock

    out = tmp_path / "run"
    out.mkdir()
    lock = _lock(out)
    try:
        code, err = invoke(["train", *tiny_train, "--out", str(out)])
    finally:
        lock.close()
    assert code == 2 and "in use by another" in err, err
    assert listing(out) == {}


def test_overwrite_stopped_before_its_first_checkpoint_keeps_the_old_run(tmp_path, tiny_train):
    from resdiag.train import RunOptions, run_training
    from resdiag.train.loop import Interrupted

    out = tmp_path / "run"
    assert invoke(["train", *tiny_train, "--out", str(out)])[0] == 0
    before = listing(out)

    def ctrl_c(stats):
        raise KeyboardInterrupt  # after step 0, before the new run's first checkpoint (step 2)

    with pytest.raises(Interrupted):
        run_training(tiny_spec(), {"steps": 2, "batch_size": 8}, RunOptions(out, overwrite=True,
                     checkpoint_every=2, plots=False), on_step=ctrl_c)
    assert listing(out) == before  # the old log, checkpoint and figures, not a splice


def test_overwrite_replaces_the_run_once_the_new_one_has_a_checkpoint(tmp_path, tiny_train):
    out = tmp_path / "run"
    assert invoke(["train", *tiny_train, "--out", str(out)])[0] == 0
    old = (out / "checkpoint.pt").read_bytes()
    assert invoke(["train", *tiny_train, "--seed", "1", "--out", str(out), "--overwrite"])[0] == 0
    assert (out / "checkpoint.pt").read_bytes() != old and not (out / ".replaced").exists()
    lines = map(json.loads, (out / "train.jsonl").read_text().splitlines())
    starts = [x for x in lines if x["type"] == "start"]
    assert len(starts) == 1  # one run in the log


def test_a_failed_new_run_leaves_no_folder(tmp_path, tiny_train, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("a bug in step 0")

    import sys

    monkeypatch.setattr(sys.modules["resdiag.train.run_training"], "run", broken)
    code, err = invoke(["train", *tiny_train, "--out", str(tmp_path / "run")])
    assert code == 2 and "a bug in step 0" in err
    assert not (tmp_path / "run").exists()


def tiny_spec():
    from resdiag.run.target import TargetSpec
    from resdiag.zoo import resolve

    return TargetSpec(arch=resolve("resnet8", width=0.25, input_shape=(3, 8, 8)))


@pytest.fixture
def tiny_train():
    return ["--arch", "resnet8", "--width", "0.25", "--input-shape", "3,8,8", "--batch-size", "8",
            "--steps", "2", "--device", "cpu", "--no-features"]


# ----------------------------------------------------------------------------- sweep cells

def test_sweep_recomputes_cells_of_other_settings_and_cells_without_metrics(tmp_path):
    from resdiag.sweep.grid import Grid
    from resdiag.sweep.run import cell_path, run_sweep

    def sweep(rank_batch_size):
        seen = []
        grid = Grid(("mlp",), (2,), probes=("rank",), rank_batch_size=rank_batch_size)
        records, _ = run_sweep(grid, tmp_path, progress=lambda c, ran: seen.append(ran))
        return records, seen, grid

    first, seen, grid = sweep(8)
    assert seen == [True]
    assert sweep(8)[1] == [False]  # same settings: kept
    again, seen, _ = sweep(16)
    assert seen == [True]  # another rank batch size: recomputed, not reported beside old numbers
    assert again[0]["settings"]["rank_batch_size"] == 16
    path = cell_path(tmp_path, grid.cells()[0][0])
    d = json.loads(path.read_text())
    del d["metrics"]
    path.write_text(json.dumps(d))
    assert sweep(16)[1] == [True]  # a cell file without metrics is recomputed, not a crash


# ----------------------------------------------------------------------------- memory message

@pytest.mark.parametrize("backward", [True, False])
def test_the_memory_message_names_the_largest_batch_that_fits(backward):
    from resdiag.run.memory import HEADROOM, _culprit, estimate_bytes
    from resdiag.zoo import resolve

    cfg, free = resolve("resnet1202"), 21 * 2**30
    message = _culprit(cfg, backward, free)
    batch = int(message.split("about ")[1].split(" ")[0].replace(",", ""))
    assert estimate_bytes(cfg, batch, backward) <= HEADROOM * free < estimate_bytes(cfg, batch + 1, backward)
    huge = resolve("resnet8", width=64, num_classes=10**8)  # the classifier alone is ~4.6 TB
    message = _culprit(huge, backward, free)
    assert "mostly through --num-classes" in message and "does not help" in message
    wide_input = resolve("mlp", depth=2, width=64, input_shape=(3, 8192, 8192))  # 1.3e10 first-layer weights
    message = _culprit(wide_input, backward, free)
    assert "mostly through --input-shape" in message, message
    deep = resolve("mlp", depth=10_000, width=4096)
    assert "mostly through --depth" in _culprit(deep, backward, free)
    big_maps = resolve("resnet8", input_shape=(3, 100_000, 100_000))  # one image's maps exceed 21 GiB
    assert "--input-shape" in _culprit(big_maps, backward, free)

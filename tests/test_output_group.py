"""Issue 13: a command's output files are written as a group, all or nothing (resdiag.writes).

This machine runs the suite as root, for whom a read-only folder is writable; so the failures are
simulated by patching the write primitives (``tempfile.mkstemp`` for staging, ``os.replace`` for
the rename, ``os.write`` for an append) to fail for one path, each output in turn.
"""

from __future__ import annotations

import errno
import os
import signal
import tempfile
from pathlib import Path

import pytest

from resdiag.errors import ResdiagError
from resdiag.writes import Write, signals_deferred, write_all
from tests.helpers import invoke

CONFIG = 'seed = 0\n[[models]]\nname = "a"\narch = "resnet8"\nwidth = 0.25\ninput_shape = [3, 8, 8]\n' \
         'batch_size = 4\nbatches = 1\nrank_batch_size = 8\n'


def listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def fail_for(monkeypatch, target: Path, phase: str) -> None:
    """Make the write of ``target`` fail in ``phase``: "stage" (no space for its temporary file),
    "rename" (the rename over it fails) or "append" (the disk fills half-way through the text)."""
    name = target.name
    if phase == "stage":
        real = tempfile.mkstemp

        def mkstemp(*a, **k):
            if str(k.get("prefix", "")).startswith(f".{name}."):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(*a, **k)

        monkeypatch.setattr("resdiag.writes.tempfile.mkstemp", mkstemp)
    elif phase == "rename":
        real_replace = os.replace

        def replace(src, dst, *a, **k):
            if Path(dst) == target and not str(src).endswith(".old"):
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            return real_replace(src, dst, *a, **k)

        monkeypatch.setattr("resdiag.writes.os.replace", replace)
    else:
        real_write = os.write

        def write(fd, data):
            if os.path.realpath(f"/proc/self/fd/{fd}") == str(target):
                real_write(fd, bytes(data[: len(data) // 2]))
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_write(fd, data)

        monkeypatch.setattr("resdiag.writes.os.write", write)


# Each output of `check --update-baseline --junitxml --format github`, and how its write can fail.
CHECK_FAULTS = [("j.xml", "stage"), ("j.xml", "rename"), ("b.json", "stage"), ("b.json", "rename"),
                ("summary.md", "append")]


@pytest.mark.parametrize("name, phase", CHECK_FAULTS, ids=[f"{n}-{p}" for n, p in CHECK_FAULTS])
def test_check_writes_all_its_outputs_or_none(tmp_path, monkeypatch, name, phase):
    cfg, base, summary = tmp_path / "c.toml", tmp_path / "b.json", tmp_path / "summary.md"
    cfg.write_text(CONFIG)
    base.write_text("old baseline\n")
    summary.write_text("what earlier steps wrote\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    before = listing(tmp_path)
    fail_for(monkeypatch, tmp_path / name, phase)
    code, err = invoke(["check", "--config", str(cfg), "--baseline", str(base), "--update-baseline",
                        "--format", "github", "--junitxml", str(tmp_path / "j.xml")])
    assert code == 2 and err.count("\n") == 1 and f"cannot write {tmp_path / name}" in err, err
    assert listing(tmp_path) == before  # old baseline, no JUnit file, summary as it was, no litter


def test_check_writes_the_group_when_nothing_fails(tmp_path, monkeypatch):
    cfg, base, summary = tmp_path / "c.toml", tmp_path / "b.json", tmp_path / "summary.md"
    cfg.write_text(CONFIG)
    summary.write_text("earlier\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, err = invoke(["check", "--config", str(cfg), "--baseline", str(base), "--update-baseline",
                        "--format", "github", "--junitxml", str(tmp_path / "j.xml")])
    assert code == 0, err
    assert sorted(listing(tmp_path)) == ["b.json", "c.toml", "j.xml", "summary.md"]
    assert summary.read_text().startswith("earlier\n### resdiag check")


@pytest.mark.parametrize("failing", range(4))
@pytest.mark.parametrize("phase", ["stage", "rename"])
def test_write_all_undoes_every_earlier_write(tmp_path, monkeypatch, failing, phase):
    names = ["a.json", "log.md", "b.json", "new.json"]
    for n in names[:3]:
        (tmp_path / n).write_text(f"old {n}\n")
    before = listing(tmp_path)
    writes = [Write(path=tmp_path / n, data=f"new {n}\n", append=n.endswith(".md")) for n in names]
    target = tmp_path / names[failing]
    fail_for(monkeypatch, target, "append" if target.suffix == ".md" else phase)
    with pytest.raises(ResdiagError, match=f"cannot write {target}"):
        write_all(writes)
    assert listing(tmp_path) == before


def test_write_all_writes_through_a_symlink(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old\n")
    (tmp_path / "link.json").symlink_to(real)
    write_all([Write(path=tmp_path / "link.json", data="new\n")])
    assert (tmp_path / "link.json").is_symlink() and real.read_text() == "new\n"


def test_a_signal_during_the_commit_undoes_it_then_stops(tmp_path, monkeypatch, default_sigint):
    (tmp_path / "a.json").write_text("old\n")
    real_replace = os.replace

    def replace(src, dst, *a, **k):
        if Path(dst).name == "a.json" and not str(src).endswith(".old"):
            signal.raise_signal(signal.SIGINT)  # Ctrl-C in the middle of the commit
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr("resdiag.writes.os.replace", replace)
    with pytest.raises(KeyboardInterrupt):
        write_all([Write(path=tmp_path / "a.json", data="new\n"), Write(path=tmp_path / "b.json", data="b")])
    assert listing(tmp_path) == {"a.json": b"old\n"}


def test_signals_are_held_then_delivered(default_sigint):
    with pytest.raises(KeyboardInterrupt):
        with signals_deferred() as pending:
            signal.raise_signal(signal.SIGINT)
            assert pending == [signal.SIGINT]  # not raised inside the block
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


TINY = ["--arch", "resnet8", "--width", "0.25", "--input-shape", "3,8,8", "--batch-size", "4",
        "--batches", "1", "--device", "cpu"]


@pytest.mark.parametrize("command", ["grad-flow", "rank"])
@pytest.mark.parametrize("name, phase", [("o.json", "rename"), ("p.svg", "stage"), ("p.svg", "rename")])
def test_json_and_plot_are_written_as_a_group(tmp_path, monkeypatch, command, name, phase):
    (tmp_path / "o.json").write_text("the previous result\n")  # rewritten last time, kept this time
    before = listing(tmp_path)
    fail_for(monkeypatch, tmp_path / name, phase)
    args = TINY if command == "grad-flow" else TINY[:-4] + TINY[-2:]  # rank has no --batches
    code, err = invoke([command, *args, "--json", str(tmp_path / "o.json"), "--plot", str(tmp_path / "p.svg")])
    assert code == 2 and f"cannot write {tmp_path / name}" in err, err
    assert listing(tmp_path) == before


@pytest.mark.parametrize("name", ["n" * 240 + ".json", "fifo.json"])
def test_an_output_that_would_fail_late_is_refused_before_the_model_runs(tmp_path, monkeypatch, name):
    import resdiag.run.gradflow as gradflow_mod

    os.mkfifo(tmp_path / "fifo.json")
    monkeypatch.setattr(gradflow_mod, "build_for", lambda *a, **k: pytest.fail("the model ran"))
    code, err = invoke(["grad-flow", *TINY, "--json", str(tmp_path / name)])
    assert code == 2 and ("too long" in err or "not a regular file" in err), err


def test_the_step_summary_may_be_a_character_device(tmp_path, monkeypatch):
    """GITHUB_STEP_SUMMARY=/dev/null (or a terminal's /dev/stderr) is appended to where it is; a
    device is not synced, renamed or truncated."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", os.devnull)
    code, err = invoke(["check", "--config", str(cfg), "--format", "github"])
    assert code == 0 and err == "", err
    assert Path(os.devnull).is_char_device()

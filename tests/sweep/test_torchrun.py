"""``resdiag sweep`` under torchrun: 2 real processes joined over gloo on this CPU. Each cell is
computed by exactly one rank, rank 0 alone writes the summary, and that summary is the one a single
process writes, number for number; a rerun computes nothing; a rank that fails or is killed makes
every rank fail with one line, and nothing hangs."""

import json
import signal

import pytest
import torch.distributed as dist

from resdiag.cli.app import main
from resdiag.sweep.grid import Grid
from resdiag.sweep.run import run_sweep
from tests.sweep.launch import TINY, finish, ran, start_ranks, tiny, torchrun

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch without distributed")
GRID = Grid(("mlp", "plain_mlp"), (2, 4), probes=("grad-flow",), batches=1, batch_size=4, device="cpu")
IDS = sorted(c.id for c in GRID.cells()[0])


def single_process(out, capsys, *extra) -> dict:
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--out", str(out), *TINY, *extra])
    assert exc.value.code == 0
    capsys.readouterr()
    return json.loads((out / "summary.json").read_text())


def stderr_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_two_ranks_share_the_cells_and_rank_0_writes_what_one_process_writes(tmp_path, capsys):
    out = tmp_path / "two"
    (code0, out0, err0), (code1, out1, err1) = finish(start_ranks(["--out", str(out), *TINY]))
    assert code0 == code1 == 0, (err0[-2000:], err1[-2000:])
    assert sorted(ran(out0) + ran(out1)) == IDS  # every cell computed, each by exactly one rank
    assert ran(out0) and ran(out1)  # and both ranks took some
    assert "sweep: median" in out0 and "wrote" in out0
    assert "sweep: median" not in out1 and "wrote" not in out1  # rank 1 prints no summary
    assert sorted(p.name for p in out.iterdir()) == ["cells", "grad_ratio.png", "summary.json"]
    want = single_process(tmp_path / "one", capsys)
    assert json.loads((out / "summary.json").read_text()) == want  # number for number
    for cell in IDS:  # the cell files too, byte for byte
        name = f"cells/{cell}.json"
        assert (out / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
    seen = []
    run_sweep(GRID, out, progress=lambda c, computed: seen.append(computed))
    assert seen == [False] * len(IDS)  # the ranks' cell files are valid resumable state


@pytest.mark.slow  # two torchrun launches and a --jobs 2 sweep: ~60 s on the shared 2-core machine
def test_torchrun_launch_and_a_rerun_that_computes_nothing(tmp_path, capsys):
    out = tmp_path / "sw"
    first = torchrun(["--out", str(out), *TINY])
    assert first.returncode == 0, first.stderr[-2000:]
    assert sorted(ran(first.stdout)) == IDS and first.stdout.count("sweep: median") == 1
    summary = (out / "summary.json").read_bytes()
    # torchrun's 2 ranks on one machine give each cell the threads --jobs 2 gives it: same numbers
    assert json.loads(summary) == single_process(tmp_path / "jobs", capsys, "--jobs", "2")
    again = torchrun(["--out", str(out), *TINY])
    assert again.returncode == 0, again.stderr[-2000:]
    assert ran(again.stdout) == [] and again.stdout.count("kept ") == len(IDS)
    assert (out / "summary.json").read_bytes() == summary


@pytest.mark.slow  # ~25 s: two ranks, one killed, then the survivor's timeout
def test_a_killed_rank_fails_the_sweep_in_one_line_and_the_rerun_finishes_it(tmp_path, capsys):
    out = tmp_path / "sw"
    args = ["--out", str(out), *tiny("0,1,2"), "--rank-timeout", "3"]
    procs = start_ranks(args)
    line = procs[1].stdout.readline()
    while line and not ran(line):
        line = procs[1].stdout.readline()
    assert ran(line), "rank 1 computed no cell"
    procs[1].send_signal(signal.SIGKILL)  # a lost machine: no goodbye, no status
    (code0, _, err0), (code1, _, _) = finish(procs, timeout=120)
    assert code1 == -signal.SIGKILL and code0 == 2
    assert stderr_lines(err0) == [stderr_lines(err0)[-1]] and "rank 1 stopped answering" in err0
    assert not (out / "summary.json").exists()
    kept = {p.stem for p in (out / "cells").iterdir()}
    assert ran(line)[0] in kept  # rank 1's finished cell is kept (the one it was on, if any, is not)
    seen = []
    records, _ = run_sweep(Grid(("mlp", "plain_mlp"), (2, 4), seeds=(0, 1, 2), probes=("grad-flow",),
                                batches=1, batch_size=4, device="cpu"), out,
                           progress=lambda c, computed: seen.append((c.id, computed)))
    assert {i for i, computed in seen if computed} == {i for i, _ in seen} - kept and len(records) == 12


@pytest.mark.slow  # ~15 s: two ranks and a 3 s timeout
def test_a_rank_that_cannot_start_stops_the_others_without_a_hang(tmp_path):
    out = tmp_path / "sw"
    procs = start_ranks(["--out", str(out), *TINY, "--rank-timeout", "3"],
                        per_rank={1: {"LOCAL_WORLD_SIZE": "x"}})
    (code0, _, err0), (code1, _, err1) = finish(procs, timeout=120)
    assert code1 == 2
    assert stderr_lines(err1) == ["resdiag: error: LOCAL_WORLD_SIZE must be an integer (set by torchrun)"]
    assert code0 == 2 and len(stderr_lines(err0)) == 1
    assert "could not join the other 1 process(es) within 3 s" in err0
    assert not out.exists()


@pytest.mark.slow  # ~15 s: two ranks, no cell computed
def test_a_rank_whose_outputs_fail_the_checks_stops_every_rank_before_anything_is_written(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (b / "sw").write_text("a file where rank 1 should find the output folder")
    (code0, _, err0), (code1, _, err1) = finish(start_ranks(["--out", "sw", *TINY], cwd=[a, b]))
    assert code0 == code1 == 2
    refusal = "--out sw is a file; give a folder (it is created if missing)"
    assert stderr_lines(err1) == [f"resdiag: error: {refusal}"]
    assert stderr_lines(err0) == [f"resdiag: error: rank 1: {refusal}"]
    assert not (a / "sw").exists()


@pytest.mark.slow  # ~25 s: two ranks and a 10 s wait for the folder
def test_an_output_folder_not_shared_by_the_ranks_is_named_as_the_cause(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (code0, _, err0), (code1, _, err1) = finish(start_ranks(["--out", "sw", *TINY], cwd=[a, b]))
    assert code0 == code1 == 2
    assert "filesystem every rank shares" in err0 and "filesystem every rank shares" in err1
    assert len(stderr_lines(err0)) == len(stderr_lines(err1)) == 1
    assert not (a / "sw" / "summary.json").exists() and not (b / "sw").exists()


@pytest.mark.parametrize("extra, message", [
    (["--jobs", "2"], "--jobs starts worker processes on this machine, and torchrun starts the ranks"),
    (["--rank-timeout", "0"], "--rank-timeout must be a number of seconds"),
    (["--rank-timeout", "nan"], "--rank-timeout must be a number of seconds"),
])
def test_refused_under_torchrun_before_joining(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.setenv("RANK", "0")  # a torchrun job of 2 whose other rank never comes: no join tried
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "9")
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--out", str(tmp_path / "sw"), *TINY, *extra])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and message in err
    assert not (tmp_path / "sw").exists()


def test_each_rank_computes_on_its_own_gpu(monkeypatch):
    import torch

    from resdiag.errors import ResdiagError
    from resdiag.sweep.ranks import this_job

    environ = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "9"}
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    job = this_job("cuda", environ)
    assert (job.rank, job.world, job.local_world, job.device) == (1, 2, 2, "cuda:1")
    assert this_job("cuda:0", environ).device == "cuda:0"  # an explicit GPU is used as given
    assert this_job("cpu", environ).device == "cpu"
    assert this_job("cuda", {}).device == "cuda"  # not under torchrun: as given
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ResdiagError, match="LOCAL_RANK 1 has no GPU"):
        this_job("cuda", environ)

"""The sweep's file contract (resdiag/sweep/files.py, docs/sweep.md "Files"): every output location
checked before any cell runs, no folder left by an error before the first cell, a cell file reused
only when it is a complete record of the same cell and settings, the summary and its plots written
together or not at all."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from resdiag.cli.app import main
from resdiag.sweep import run as sweep_run
from resdiag.sweep.files import SUMMARY_FILES, cell_path
from resdiag.sweep.grid import Grid
from resdiag.sweep.run import run_sweep, summarise

ARGS = ["--families", "mlp", "--depths", "2,4", "--probes", "grad-flow", "--batches", "1",
        "--batch-size", "4"]
GRID = Grid(("mlp",), (2, 4), probes=("grad-flow",), batches=1, batch_size=4, device="cpu")


def sweep(out, *extra) -> int:
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--out", str(out), *ARGS, *extra])
    return exc.value.code


def tree(folder) -> dict:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))} if folder.exists() else {}


@pytest.mark.parametrize("where", ["cells", "cells/mlp-d4-batch-identity-s0.json", *SUMMARY_FILES])
def test_every_output_location_is_checked_before_any_cell_runs(tmp_path, capsys, where, monkeypatch):
    out = tmp_path / "sw"
    (out / "cells").mkdir(parents=True)
    if where == "cells":
        (out / "cells").rmdir()
        (out / "cells").write_text("not a folder")
    else:
        (out / where).mkdir()  # a folder where the sweep writes a file
    before = tree(out)
    monkeypatch.setattr(sweep_run, "run_cell", lambda *a, **k: pytest.fail("a cell ran"))
    assert sweep(out) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and where.split("/")[-1] in err
    assert tree(out) == before  # nothing written, nothing removed


def test_an_error_before_the_first_cell_is_done_leaves_no_folder(tmp_path, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_run, "run_cell", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(GRID, tmp_path / "new" / "sw")
    assert not (tmp_path / "new").exists()


def test_an_error_after_a_cell_keeps_the_cell_as_resumable_state(tmp_path, monkeypatch):
    real, calls = sweep_run.run_cell, []

    def second_fails(cell, *a, **k):
        calls.append(cell.id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(cell, *a, **k)

    monkeypatch.setattr(sweep_run, "run_cell", second_fails)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(GRID, tmp_path / "sw")
    assert [p.name for p in (tmp_path / "sw" / "cells").iterdir()] == [f"{calls[0]}.json"]


def good_record(tmp_path):
    run_sweep(GRID, tmp_path)
    cell = GRID.cells()[0][0]
    return cell, json.loads(cell_path(tmp_path, cell).read_text())


def damaged(d: dict) -> list:
    bad_metric = {**d, "metrics": {**d["metrics"], "boundary_ratio": "abc"}}
    missing_metric = {**d, "metrics": {k: v for k, v in d["metrics"].items() if k != "boundary_ratio"}}
    bool_metric = {**d, "metrics": {**d["metrics"], "boundary_ratio": True}}
    no_verdict = {**d, "verdicts": {}}
    verdict_number = {**d, "verdicts": {"grad-flow": 1}}
    other_version = {**d, "schema_version": 2}
    return [json.dumps(x) for x in (bad_metric, missing_metric, bool_metric, no_verdict, verdict_number,
                                    other_version, [d], "text", None, {**d, "metrics": None})] + \
        ["{" * 100000, "\x00\xff garbage", ""]


def test_a_damaged_or_foreign_cell_file_is_recomputed_not_a_crash(tmp_path, monkeypatch):
    cell, d = good_record(tmp_path)
    want = cell_path(tmp_path, cell).read_bytes()
    monkeypatch.setattr(sweep_run, "run_cell", lambda *a, **k: d)  # what is computed is not the point
    for text in damaged(d):
        cell_path(tmp_path, cell).write_text(text)
        seen = []
        records, _ = run_sweep(GRID, tmp_path, progress=lambda c, computed: seen.append((c.id, computed)))
        assert sorted(seen) == sorted([(cell.id, True), (GRID.cells()[0][1].id, False)]), text[:80]
        assert cell_path(tmp_path, cell).read_bytes() == want
        summarise(records)


def test_a_cell_with_non_finite_metrics_is_kept(tmp_path):
    cell, d = good_record(tmp_path)
    d["metrics"]["boundary_ratio"] = "NaN"  # how the JSON writes a non-finite number (docs/schema.md)
    cell_path(tmp_path, cell).write_text(json.dumps(d))
    seen = []
    run_sweep(GRID, tmp_path, progress=lambda c, computed: seen.append(computed))
    assert seen == [False, False]


def test_the_summary_and_its_plots_are_written_together_or_not_at_all(tmp_path, capsys, monkeypatch):
    import resdiag.report.sweep as report

    out = tmp_path / "sw"
    assert sweep(out) == 0
    before = {name: (out / name).read_bytes() for name in ("summary.json", "grad_ratio.png")}
    real = report.plot_sweep

    def draws_then_fails(rows, folder):
        real(rows, folder)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "plot_sweep", draws_then_fails)
    assert sweep(out, "--seeds", "0,1") != 0  # new cells, so a new summary, and then the disk is full
    assert {name: (out / name).read_bytes() for name in before} == before
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_summary_files_name_every_plot_the_summary_step_draws(tmp_path):
    from resdiag.metrics.registry import METRICS
    from resdiag.report.sweep import plot_sweep

    records = [{"cell": dict(family="mlp", depth=d, norm="batch", shortcut="identity", seed=0),
                "metrics": {k: 0.5 for k in METRICS}, "verdicts": {}} for d in (2, 4)]
    drawn = plot_sweep(summarise(records), tmp_path)  # every metric present: every plot drawn
    assert sorted(p.name for p in drawn) == sorted(n for n in SUMMARY_FILES if n != "summary.json")


def test_summary_json_does_not_depend_on_the_hash_seed():
    """The rows' metric columns came out of a set of names, so summary.json changed between two
    identical runs (and between the ranks of a job)."""
    code = ("import json; from resdiag.sweep.run import summarise;"
            "from resdiag.metrics.registry import METRICS;"
            "r = {'cell': dict(family='mlp', depth=2, norm='batch', shortcut='identity', seed=0),"
            " 'metrics': {k: 1.0 for k in METRICS}, 'verdicts': {}};"
            "print(json.dumps(summarise([r])))")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": str(seed), "PYTHONPATH": str(Path(__file__).parents[2])}
                           ).stdout for seed in (1, 2, 3)}
    assert len(outs) == 1

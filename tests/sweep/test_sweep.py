import json

import pytest

from resdiag.cli.app import main
from resdiag.errors import ResdiagError
from resdiag.sweep.grid import Grid, parse_list
from resdiag.sweep.run import cell_path, run_sweep, summarise

TINY = dict(batches=1, batch_size=4, rank_batch_size=8, device="cpu")


def grid(**kw):
    return Grid(("mlp", "plain_mlp"), (2, 4), seeds=(0, 1), **{**TINY, **kw})


def test_interrupted_sweep_recomputes_only_missing_cells(tmp_path):
    g = grid()
    ran = []
    records, skipped = run_sweep(g, tmp_path, progress=lambda c, computed: ran.append((c.id, computed)))
    assert len(records) == 8 and not skipped and all(computed for _, computed in ran)
    cells, _ = g.cells()
    before = cell_path(tmp_path, cells[0]).read_bytes()
    cell_path(tmp_path, cells[3]).unlink()  # the cell a killed run never finished
    cell_path(tmp_path, cells[5]).write_text('{"schema": "resdiag.swe')  # torn file: not trusted
    ran.clear()
    records2, _ = run_sweep(g, tmp_path, progress=lambda c, computed: ran.append((c.id, computed)))
    assert sorted(i for i, computed in ran if computed) == sorted([cells[3].id, cells[5].id])
    assert cell_path(tmp_path, cells[0]).read_bytes() == before
    assert records2 == records  # seeded: recomputed cells give the same numbers


def test_summary_groups_seeds():
    records = [
        {"cell": {"family": "mlp", "depth": 2, "norm": "batch", "shortcut": "identity", "seed": s},
         "metrics": {"boundary_ratio": v}, "verdicts": {"grad-flow": "healthy"}}
        for s, v in ((0, 1.0), (1, 3.0), (2, 2.0))
    ]
    (row,) = summarise(records)
    assert row["boundary_ratio"] == 2.0 and row["boundary_ratio_min"] == 1.0 and row["seeds"] == 3


def test_invalid_combinations_are_skipped_with_reason():
    g = Grid(("plain", "resnet"), (8,), shortcuts=("identity", "scale:0.5"), **TINY)
    cells, skipped = g.cells()
    assert len(cells) == 3 and len(skipped) == 1 and "no shortcut" in skipped[0][1]


@pytest.mark.parametrize("kw, msg", [({"families": ("nope",)}, "unknown architecture"),
                                     ({"probes": ("x",)}, "unknown probe"),
                                     ({"depths": (57,), "families": ("resnet",)}, "no valid cell")])
def test_bad_grids(kw, msg):
    with pytest.raises(ResdiagError, match=msg):
        Grid(**{**dict(families=("mlp",), depths=(2,), **TINY), **kw}).cells()


def test_parse_list():
    assert parse_list("scale:0.5,0.5;identity") == ("scale:0.5,0.5", "identity")
    assert parse_list("20, 56", int) == (20, 56)
    with pytest.raises(ResdiagError):
        parse_list("a,b", int, "depth")


def test_cli_sweep_with_two_jobs(tmp_path, capsys):
    out = tmp_path / "sw"
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--out", str(out), "--families", "mlp,plain_mlp", "--depths", "2,4",
              "--batches", "1", "--batch-size", "4", "--rank-batch-size", "8", "--jobs", "2"])
    assert exc.value.code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["schema"] == "resdiag.sweep" and len(summary["rows"]) == 4
    assert (out / "grad_ratio.png").exists() and (out / "feature_erank.png").exists()


def test_cli_sweep_bad_input_writes_nothing(tmp_path, capsys):
    out = tmp_path / "sw"
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--out", str(out), "--depths", "57", "--families", "resnet"])
    assert exc.value.code == 2 and not out.exists()
    assert capsys.readouterr().err.count("\n") == 1


def test_a_family_without_a_norm_option_gets_one_cell_per_depth():
    """Transformers keep their own LayerNorm: --norms does not apply, so the grid neither skips
    every transformer cell (as it did) nor repeats one cell per norm."""
    valid, skipped = Grid(families=("transformer", "resnet"), depths=(2, 8), norms=("batch", "none")).cells()
    ids = [c.id for c in valid]
    assert ids == ["transformer-d2-own-identity-s0", "transformer-d8-own-identity-s0",
                   "resnet-d8-batch-identity-s0", "resnet-d8-none-identity-s0"]
    assert all(c.family == "resnet" for c, _ in skipped)  # resnet depth 2 is invalid
    assert valid[0].config().name == "transformer2"

"""What a sweep writes, and the contract it keeps (docs/sweep.md, "Files"):

- every place it will write (the folder, ``cells/``, each cell file, the summary and the plots) is
  checked before any cell runs, so a bad location is one line and exit 2, with nothing written;
- the folders it creates are removed again if it stops before a cell file exists;
- each cell file, the summary and the plots are written atomically (``resdiag.writes``: a temporary
  file, then a rename), the summary and plots as one group, together or not at all;
- cell files are resumable state by design: a file is kept only if it is a complete record of the
  same cell computed with the same settings, and anything else at its place is recomputed.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from resdiag.errors import ResdiagError
from resdiag.metrics.registry import of_probe
from resdiag.results import decode, dumps, encode
from resdiag.sweep.grid import Cell, Grid
from resdiag.writes import write

CELL_SCHEMA, CELL_SCHEMA_VERSION = "resdiag.sweep-cell", 1
# What the summary step writes into --out: summary.json and the plots of resdiag.report.sweep.plot_sweep
# (tests/sweep/test_files.py holds the plot names to the ones it draws).
SUMMARY_FILES = ("summary.json", "grad_ratio.png", "feature_erank.png")


def cell_path(out: Path, cell: Cell) -> Path:
    return out / "cells" / f"{cell.id}.json"


def check_outputs(out: Path, cells: list[Cell]) -> None:
    """Refuse, before any work, every output location the sweep could not write."""
    from resdiag.paths import check_folder, check_out_folder

    check_out_folder("--out", out)
    folder = out / "cells"
    if folder.exists() and not folder.is_dir():
        raise ResdiagError(f"--out {out}: {folder} is a file, where the sweep keeps its cell files")
    if folder.is_dir():
        check_folder("--out", folder)
    for path in [out / name for name in SUMMARY_FILES] + [cell_path(out, c) for c in cells]:
        if path.is_dir():
            raise ResdiagError(f"--out {out}: {path} is a folder, where the sweep writes a file; "
                               f"move it away")


@contextlib.contextmanager
def folders(out: Path, *, keep: bool = False) -> Iterator[None]:
    """Create ``out/cells``; if the block raises, remove the folders made here that are still
    empty (no cell finished), so an early error or Ctrl-C leaves nothing behind. ``keep``: never
    remove (other ranks of a torchrun job may be writing into them)."""
    made = [p for p in (out / "cells", out, *out.parents) if not p.exists()]  # innermost first
    try:
        (out / "cells").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResdiagError(f"--out {out}: cannot create {out / 'cells'} ({exc.strerror})") from None
    try:
        yield
    except BaseException:
        if not keep:
            for p in made:
                with contextlib.suppress(OSError):  # not empty: a cell is done, keep it
                    os.rmdir(p)
        raise


def metric_names(grid: Grid) -> set[str]:
    return {m.name for p in grid.probes for m in of_probe(p)}


def read_cell(out: Path, cell: Cell, grid: Grid) -> dict | None:
    """The cell's record if its file holds this cell, computed with these settings
    (``Grid.settings``), complete: every metric of the grid's probes a number and a verdict per
    probe. None for anything else (no file, a folder, a torn or foreign file, other settings)."""
    try:
        d = decode(json.loads(cell_path(out, cell).read_text()))
    except (OSError, ValueError, RecursionError):
        return None
    if not (isinstance(d, dict) and d.get("schema") == CELL_SCHEMA and d.get("cell") == cell.to_dict()
            and d.get("schema_version") == CELL_SCHEMA_VERSION and d.get("settings") == grid.settings()):
        return None
    metrics, verdicts = d.get("metrics"), d.get("verdicts")
    if not (isinstance(metrics, dict) and set(metrics) == metric_names(grid)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in metrics.values())):
        return None
    if not (isinstance(verdicts, dict) and set(verdicts) == set(grid.probes)
            and all(isinstance(v, str) for v in verdicts.values())):
        return None
    return d


def save_cell(out: Path, cell: Cell, record: dict) -> None:
    write(cell_path(out, cell), dumps(record))


def write_summary(out: Path, grid: Grid, rows: list[dict], skipped: list) -> None:
    payload = {"schema": "resdiag.sweep", "schema_version": 1, "grid": asdict(grid),
               "rows": rows, "skipped": [{"cell": c.to_dict(), "reason": why} for c, why in skipped]}
    write(out / "summary.json", dumps(encode(payload)))


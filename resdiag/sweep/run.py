"""Running a sweep: one process per cell (``jobs`` at a time), one result file per cell.

A cell's file is written atomically when the cell is done, so a sweep killed halfway and started
again recomputes only the cells whose file is missing or unreadable.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import statistics
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

from resdiag.errors import ResdiagError
from resdiag.results import atomic_write, decode, dumps, encode
from resdiag.sweep.grid import Cell, Grid

CELL_SCHEMA = "resdiag.sweep-cell"


def cell_path(out: Path, cell: Cell) -> Path:
    return out / "cells" / f"{cell.id}.json"


def done(out: Path, cell: Cell, settings: dict) -> bool:
    """Whether the cell's file holds this cell computed with these settings (``Grid.settings``): a
    file from a run with another batch size, probe set, device... is recomputed, never reused."""
    try:
        d = json.loads(cell_path(out, cell).read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(d, dict) and d.get("schema") == CELL_SCHEMA and d.get("cell") == cell.to_dict()
            and d.get("settings") == settings and isinstance(d.get("metrics"), dict)
            and isinstance(d.get("verdicts"), dict))


def cell_target(cell: Cell, grid: Grid):
    """The ``TargetSpec`` of one cell: its zoo config, seeded by the cell's seed."""
    from resdiag.run.inputs import InputSpec
    from resdiag.run.target import TargetSpec

    inputs = InputSpec(kind="tokens", seq_len=grid.tokens, vocab=grid.vocab) if grid.tokens else InputSpec()
    return TargetSpec(arch=cell.config(), seed=cell.seed, inputs=inputs)


def run_cell(cell: Cell, grid: Grid, threads: int) -> dict:
    """Measure one cell (in a worker process) and return its JSON-ready record: every metric of the
    registry (``resdiag.metrics.registry``) of each probe run."""
    import torch

    from resdiag.metrics.registry import values
    from resdiag.run.gradflow import grad_flow
    from resdiag.run.rank import rank
    from resdiag.run.target import build_target

    torch.set_num_threads(threads)
    target = build_target(cell_target(cell, grid), device=grid.device)
    record: dict = {"schema": CELL_SCHEMA, "schema_version": 1, "cell": cell.to_dict(),
                    "settings": grid.settings(), "metrics": {},
                    "verdicts": {}, "parameters": target.info.parameters}
    for probe in grid.probes:
        if probe == "grad-flow":
            r = grad_flow(target, batches=grid.batches, batch_size=grid.batch_size, device=grid.device)
        else:
            r = rank(target, batch_size=grid.rank_batch_size, device=grid.device)
        record["metrics"].update(values(probe, r.summary))
        record["verdicts"][probe] = r.verdict.status
    return encode(record)


def run_sweep(grid: Grid, out: Path, jobs: int = 1,
              progress: Callable[[Cell, bool], None] | None = None) -> tuple[list[dict], list]:
    """Run every cell that has no result file yet; return (all cell records, skipped combinations)."""
    if jobs < 1:
        raise ResdiagError(f"--jobs must be >= 1, got {jobs}")
    cells, skipped = grid.cells()
    _check_memory(grid, cells)  # refuse up front, before the folder exists
    (out / "cells").mkdir(parents=True, exist_ok=True)
    settings = grid.settings()
    todo = [c for c in cells if not done(out, c, settings)]
    for c in cells:
        if c not in todo and progress:
            progress(c, False)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    if jobs == 1:
        for c in todo:
            _save(out, c, run_cell(c, grid, threads), progress)
    else:
        _run_parallel(todo, grid, out, jobs, threads, progress)
    records = [decode(json.loads(cell_path(out, c).read_text())) for c in cells]
    return records, skipped


def _quiet_worker() -> None:
    """A worker leaves Ctrl-C and SIGTERM to the parent, which ends it: no worker tracebacks."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def _workers_ignore_ctrl_c() -> Iterator[None]:
    """Start the workers with SIGINT ignored: an ignored signal is inherited across exec, and Python
    keeps it ignored, so a Ctrl-C (sent to the whole process group) cannot hit a worker still
    starting up, before ``_quiet_worker`` runs. The parent's handler is back right after."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _run_parallel(todo: list[Cell], grid: Grid, out: Path, jobs: int, threads: int, progress) -> None:
    """``jobs`` worker processes; on Ctrl-C, SIGTERM or an error every worker is ended before the
    exception goes on (no orphans computing after resdiag has exited)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_quiet_worker)
    try:
        with _workers_ignore_ctrl_c():
            futures = {pool.submit(run_cell, c, grid, threads): c for c in todo}
        for f in as_completed(futures):
            _save(out, futures[f], f.result(), progress)
    except BaseException:
        workers = list((pool._processes or {}).values())  # the executor has no public kill
        manager = pool._executor_manager_thread
        for w in workers:
            w.terminate()
        for w in workers:
            w.join(timeout=10)
        pool.shutdown(wait=True, cancel_futures=True)  # its manager thread sees the workers gone, ends
        if manager is not None:
            manager.join(timeout=10)
        raise
    pool.shutdown()


def _check_memory(grid: Grid, cells: list[Cell]) -> None:
    from resdiag.run.target import check_memory

    for c in cells:
        spec = cell_target(c, grid)
        if "grad-flow" in grid.probes:
            check_memory(spec, batch_size=grid.batch_size, device=grid.device, backward=True)
        if "rank" in grid.probes:
            check_memory(spec, batch_size=grid.rank_batch_size, device=grid.device, backward=False)


def _save(out: Path, cell: Cell, record: dict, progress) -> None:
    atomic_write(cell_path(out, cell), dumps(record))
    if progress:
        progress(cell, True)


def summarise(records: list[dict]) -> list[dict]:
    """One row per variant and depth: median and range over seeds of every metric."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        c = Cell(**r["cell"])  # one record per cell: the grid refuses repeated depths and seeds
        groups.setdefault((c.variant, c.depth), []).append(r)
    rows = []
    for (variant, depth), rs in sorted(groups.items()):
        row = {"variant": variant, "depth": depth, "seeds": len(rs),
               "verdicts": sorted({f"{k}:{v}" for r in rs for k, v in r["verdicts"].items()})}
        for key in {k for r in rs for k in r["metrics"]}:
            values = [r["metrics"][key] for r in rs if math.isfinite(r["metrics"].get(key, math.nan))]
            row[key] = statistics.median(values) if values else math.nan
            row[f"{key}_min"] = min(values) if values else math.nan
            row[f"{key}_max"] = max(values) if values else math.nan
        rows.append(row)
    return rows


def write_summary(out: Path, grid: Grid, rows: list[dict], skipped: list) -> None:
    payload = {"schema": "resdiag.sweep", "schema_version": 1, "grid": asdict(grid),
               "rows": rows, "skipped": [{"cell": c.to_dict(), "reason": why} for c, why in skipped]}
    atomic_write(out / "summary.json", dumps(encode(payload)))

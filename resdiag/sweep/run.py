"""Running a sweep: its cells one after the other, in ``jobs`` local worker processes, or spread
over the ranks of a torchrun job (``resdiag.sweep.ranks``); one result file per cell.

A cell's file is written atomically when the cell is done, so a sweep killed halfway and started
again recomputes only the cells whose file is missing, damaged or of other settings
(``resdiag.sweep.files``).
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from resdiag.errors import ResdiagError
from resdiag.results import encode
from resdiag.sweep.files import (CELL_SCHEMA, CELL_SCHEMA_VERSION, cell_path, check_outputs, folders,
                                 read_cell, save_cell, write_summary)
from resdiag.sweep.grid import Cell, Grid
from resdiag.sweep.ranks import Solo, Team, describe

__all__ = ["cell_path", "run_cell", "run_sweep", "summarise", "write_summary"]


def cell_target(cell: Cell, grid: Grid):
    """The ``TargetSpec`` of one cell: its zoo config, seeded by the cell's seed."""
    from resdiag.run.inputs import InputSpec
    from resdiag.run.target import TargetSpec

    inputs = InputSpec(kind="tokens", seq_len=grid.tokens, vocab=grid.vocab) if grid.tokens else InputSpec()
    return TargetSpec(arch=cell.config(), seed=cell.seed, inputs=inputs)


def run_cell(cell: Cell, grid: Grid, threads: int, device: str | None = None) -> dict:
    """Measure one cell (in a worker process) and return its JSON-ready record: every metric of the
    registry (``resdiag.metrics.registry``) of each probe run. ``device``: where it runs (a rank's
    own GPU under torchrun), when not ``grid.device``; the record's settings say ``grid.device``."""
    import torch

    from resdiag.metrics.registry import values
    from resdiag.run.gradflow import grad_flow
    from resdiag.run.rank import rank
    from resdiag.run.target import build_target

    torch.set_num_threads(threads)
    device = device or grid.device
    target = build_target(cell_target(cell, grid), device=device)
    record: dict = {"schema": CELL_SCHEMA, "schema_version": CELL_SCHEMA_VERSION, "cell": cell.to_dict(),
                    "settings": grid.settings(), "metrics": {},
                    "verdicts": {}, "parameters": target.info.parameters}
    for probe in grid.probes:
        if probe == "grad-flow":
            r = grad_flow(target, batches=grid.batches, batch_size=grid.batch_size, device=device)
        else:
            r = rank(target, batch_size=grid.rank_batch_size, device=device)
        record["metrics"].update(values(probe, r.summary))
        record["verdicts"][probe] = r.verdict.status
    return encode(record)


def run_sweep(grid: Grid, out: Path, jobs: int = 1, progress: Callable[[Cell, bool], None] | None = None,
              *, team: Solo | Team | None = None, device: str | None = None) -> tuple[list[dict], list]:
    """Run every cell that has no valid result file yet; return (all cell records, skipped
    combinations). Under torchrun (``team``) the ranks share the pending cells and only rank 0
    returns the records (the others return none)."""
    team = team or Solo()
    try:
        if jobs < 1:
            raise ResdiagError(f"--jobs must be >= 1, got {jobs}")
        if jobs > 1 and team.active:
            raise ResdiagError(TORCHRUN_AND_JOBS)
        cells, skipped = grid.cells()
        _check_memory(grid, cells)
        check_outputs(out, cells)  # every place written to, before the folder exists
        error = None
    except ResdiagError as exc:
        error, cells, skipped = str(exc), [], []
    team.agree(error)  # one rank's bad input stops every rank, before anything is written
    with folders(out, keep=team.active) if team.main else contextlib.nullcontext():
        todo = _pending(grid, out, cells, team, progress)
        if not team.main:
            _see_shared_folder(out, team.rank)
        threads = max(1, (os.cpu_count() or 1) // (jobs if not team.active else team.local_world))
        if jobs > 1:
            _run_parallel(todo, grid, out, jobs, threads, progress)
        else:
            _run_claimed(todo, grid, out, team, threads, device, progress)
        team.finished()
    if not team.main:
        return [], skipped
    return [_record(out, c, grid, team) for c in cells], skipped


TORCHRUN_AND_JOBS = ("--jobs starts worker processes on this machine, and torchrun starts the ranks: use one "
                     "(--nproc-per-node N instead of --jobs N under torchrun)")


def _run_claimed(todo: list[Cell], grid: Grid, out: Path, team, threads: int, device, progress) -> None:
    """The cells this process claims (all of them for one process), one after the other."""
    for i in team.claims(len(todo)):
        try:
            _save(out, todo[i], run_cell(todo[i], grid, threads, device), progress)
        except Exception as exc:  # the other ranks stop claiming; rank 0 reports this line
            team.failed(f"rank {team.rank}: cell {todo[i].id}: {describe(exc)}")
            raise


def _pending(grid: Grid, out: Path, cells: list[Cell], team, progress) -> list[Cell]:
    """The cells without a valid file, listed once by rank 0 and shared, so each is claimed once."""
    by_id = {c.id: c for c in cells}
    todo = [by_id[i] for i in team.share(lambda: [c.id for c in cells if read_cell(out, c, grid) is None])]
    if team.main and progress:
        for c in cells:
            if c not in todo:
                progress(c, False)
    return todo


def _see_shared_folder(out: Path, rank: int, patience: float = 10.0) -> None:
    """A rank other than 0 writes its cells into the folder rank 0 made: on a filesystem it does not
    share with rank 0 that folder is missing (looked for a few seconds: network filesystems cache)."""
    import time

    end = time.monotonic() + patience
    while not (out / "cells").is_dir():
        if time.monotonic() > end:
            raise ResdiagError(f"rank {rank}: --out {out} holds no cells/ folder here, though rank 0 made "
                               f"it: put --out on a filesystem every rank shares")
        time.sleep(0.2)


def _record(out: Path, cell: Cell, grid: Grid, team) -> dict:
    record = read_cell(out, cell, grid)
    if record is None:
        where = " (is --out on a filesystem every rank shares?)" if team.active else ""
        raise ResdiagError(f"cell {cell.id}: its file {cell_path(out, cell)} is missing or damaged after "
                           f"the run{where}")
    return record


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
    save_cell(out, cell, record)
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
        for key in dict.fromkeys(k for r in rs for k in r["metrics"]):  # first-seen order: stable
            values = [r["metrics"][key] for r in rs if math.isfinite(r["metrics"].get(key, math.nan))]
            row[key] = statistics.median(values) if values else math.nan
            row[f"{key}_min"] = min(values) if values else math.nan
            row[f"{key}_max"] = max(values) if values else math.nan
        rows.append(row)
    return rows

"""Start ``resdiag sweep`` as the ranks of a job, the way torchrun does it: one process per rank with
RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT set (each rank's output
kept apart, and any rank killable on its own), or through ``python -m torch.distributed.run``."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def tiny(seeds: str = "0") -> list[str]:
    """Tiny cells, grad-flow only (a fraction of a second each): 4 per seed."""
    return ["--families", "mlp,plain_mlp", "--depths", "2,4", "--seeds", seeds, "--probes", "grad-flow",
            "--batches", "1", "--batch-size", "4"]


TINY = tiny()


def free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def env(**extra: str) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
            "COLUMNS": "200", **extra}


def start_ranks(args: list[str], world: int = 2, *, cwd: list[Path] | None = None,
                local_world: str = "1", per_rank: dict[int, dict] | None = None) -> list[subprocess.Popen]:
    """``world`` processes of ``python -m resdiag sweep ARGS``. LOCAL_WORLD_SIZE 1 by default, so
    each rank uses every core as a single process would: the same threads, the same numbers."""
    port = free_port()
    procs = []
    for r in range(world):
        e = env(**{"RANK": str(r), "WORLD_SIZE": str(world), "LOCAL_RANK": str(r),
                   "LOCAL_WORLD_SIZE": local_world, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port,
                   **(per_rank or {}).get(r, {})})
        procs.append(subprocess.Popen([sys.executable, "-m", "resdiag", "sweep", *args], env=e,
                                      cwd=(cwd or [ROOT] * world)[r], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    return procs


def finish(procs: list[subprocess.Popen], timeout: float = 300) -> list[tuple[int, str, str]]:
    """(exit code, stdout, stderr) of each rank."""
    outputs = [p.communicate(timeout=timeout) for p in procs]
    return [(p.returncode, *o) for p, o in zip(procs, outputs)]


def ran(stdout: str) -> list[str]:
    """The cell ids a rank's output says it computed."""
    return re.findall(r"^(?:\[rank \d+\] )?ran (\S+)$", stdout, flags=re.M)


def torchrun(args: list[str], nproc: int = 2) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
           "-m", "resdiag", "sweep", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)

"""DDP, FSDP2 and FSDP1 over 2 gloo processes on the CPU record the norms one process records for the same
global batch (to 1e-5), the same on every rank; rank 0 alone writes the JSON lines."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch import nn

from resdiag.api import Monitor
from tests.integrations.problems import ResNetMLP, batch

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch without distributed")
ROOT = Path(__file__).resolve().parents[2]


def run_ranks(kind: str, out: Path, world: int = 2) -> list[dict]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    env = os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "tests.integrations.distributed_worker", str(r), str(world),
                               kind, str(out), port], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
             for r in range(world)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(errors)[-3000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(world)]


def single_process() -> dict:
    torch.manual_seed(0)
    model = ResNetMLP()
    x, y = batch(8)
    monitor = Monitor(model, every=1)
    with monitor.record(0) as rec:
        nn.functional.cross_entropy(model(x), y).backward()
    return {"params": rec.param_norms, "layers": {r.name: r.grad_norm for r in rec.result.layers},
            "weights": {r.name: r.weight_norm for r in rec.result.layers},
            "boundaries": {b.name: b.grad_norm for b in rec.result.boundaries}}


@pytest.mark.slow  # two python processes each: ~45 s on the shared 2-core machine
@pytest.mark.parametrize("kind", ["ddp", "fsdp2", "fsdp1"])
def test_sharded_and_replicated_equal_one_process(tmp_path, kind):
    ranks = run_ranks(kind, tmp_path)
    want = single_process()
    for got in ranks:
        for part in ("params", "layers", "weights", "boundaries"):
            assert got[part].keys() == want[part].keys(), part
            for k, v in want[part].items():
                assert got[part][k] == pytest.approx(v, rel=1e-5), (part, k)
    assert ranks[0] == ranks[1]  # every rank holds the same record
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 1  # written by rank 0 only

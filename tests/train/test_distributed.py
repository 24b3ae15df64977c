"""`resdiag train` under torchrun: 2 processes, gloo, on this machine's CPU."""

import os
import subprocess
import sys

from tests.train.conftest import TINY_ARGS


def test_two_processes_record_the_same_and_rank_0_writes(tmp_path):
    out, logs = tmp_path / "out", tmp_path / "ranks"
    env = {**os.environ, "RESDIAG_RANK_LOG": str(logs), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "resdiag", "train", *TINY_ARGS, "--steps", "3", "--record-every", "2", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("wrote") == 1  # one summary: rank 0's
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.pt", "gradflow.png", "loss.png", "rank.png", "train.jsonl"]
    rank0, rank1 = (logs / "rank0.jsonl").read_text(), (logs / "rank1.jsonl").read_text()
    assert rank0 == rank1  # loss, error, time, gradient flow and ranks: identical on both ranks
    assert (out / "train.jsonl").read_text() == rank0
    assert '"world_size": 2' in rank0 and rank0.count('"type": "probe"') == 2

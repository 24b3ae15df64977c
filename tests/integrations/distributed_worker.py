"""Worker of test_distributed.py: one rank of a 2-process gloo job recording one optimizer step of
its half of the global batch under DDP, FSDP2 (fully_shard) or FSDP1; writes what it recorded."""

from __future__ import annotations

import json
import os
import sys

import torch
import torch.distributed as dist
from torch import nn


def main(rank: int, world: int, kind: str, out: str, port: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        from resdiag.api import Monitor
        from tests.integrations.problems import ResNetMLP, batch

        torch.manual_seed(0)
        model = ResNetMLP()
        x, y = batch(8)
        x, y = x.chunk(world)[rank], y.chunk(world)[rank]
        if kind == "ddp":
            model = nn.parallel.DistributedDataParallel(model)
        elif kind == "fsdp2":
            from torch.distributed.device_mesh import init_device_mesh
            from torch.distributed.fsdp import fully_shard

            mesh = init_device_mesh("cpu", (world,))
            for block in model.blocks:
                fully_shard(block, mesh=mesh)
            fully_shard(model, mesh=mesh)
        elif kind == "fsdp1":
            from torch.distributed.fsdp import FullyShardedDataParallel

            model = FullyShardedDataParallel(model, device_id=torch.device("cpu"), use_orig_params=True)
        monitor = Monitor(model, every=1, jsonl=os.path.join(out, "r.jsonl"))
        with monitor.record(0) as rec:
            nn.functional.cross_entropy(model(x), y).backward()
        with open(os.path.join(out, f"rank{rank}.json"), "w") as fh:
            json.dump({"params": rec.param_norms,
                       "layers": {r.name: r.grad_norm for r in rec.result.layers},
                       "weights": {r.name: r.weight_norm for r in rec.result.layers},
                       "boundaries": {b.name: b.grad_norm for b in rec.result.boundaries}}, fh)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])

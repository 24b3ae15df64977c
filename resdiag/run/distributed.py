"""torch.distributed for the commands a launcher may start (``resdiag train`` and ``resdiag sweep``):
the launcher's environment, the process group, and the few collectives the training loop needs.

``torchrun`` (``python -m torch.distributed.run``) starts one process per GPU (or per CPU worker)
and sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT. resdiag then joins the
process group (gloo on the CPU, nccl on CUDA), wraps the model in DistributedDataParallel, and
leaves the group at the end. A process group the caller already set up is used and left alone.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from resdiag.errors import ResdiagError

_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    launched: bool = False  # started by torchrun (or set up by the caller)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.launched and self.world > 1


def from_env(environ=os.environ) -> Dist:
    """The process's place in a torchrun job, or a single process when not launched by one."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return Dist(dist.get_rank(), dist.get_world_size(), int(environ.get("LOCAL_RANK", 0)), True)
    if not all(k in environ for k in ("RANK", "WORLD_SIZE")):
        return Dist()
    try:
        rank, world = int(environ["RANK"]), int(environ["WORLD_SIZE"])
        local = int(environ.get("LOCAL_RANK", rank))
    except ValueError:
        raise ResdiagError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (set by torchrun)") from None
    if not 0 <= rank < world:
        raise ResdiagError(f"RANK {rank} is not in [0, WORLD_SIZE {world})")
    missing = [k for k in _ENV if k not in environ and k != "LOCAL_RANK"]
    if missing:
        raise ResdiagError(f"a distributed launch needs {', '.join(missing)}: start with torchrun")
    return Dist(rank, world, local, True)


def device_for(dist: Dist, device: torch.device) -> torch.device:
    """Each process its own GPU: ``cuda`` becomes ``cuda:LOCAL_RANK`` under torchrun."""
    if device.type == "cuda" and dist.launched and device.index is None:
        if dist.local_rank >= torch.cuda.device_count():
            raise ResdiagError(f"LOCAL_RANK {dist.local_rank} has no GPU: {torch.cuda.device_count()} here")
        return torch.device("cuda", dist.local_rank)
    return device


@contextlib.contextmanager
def process_group(dist: Dist, device: torch.device) -> Iterator[None]:
    """Join the job's process group for the duration, unless the caller already has."""
    tdist = torch.distributed
    if not dist.launched or tdist.is_initialized():
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    tdist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield
    finally:
        tdist.destroy_process_group()


def wrap(model: torch.nn.Module, dist: Dist, device: torch.device) -> torch.nn.Module:
    """DistributedDataParallel around ``model`` in a multi-process job; the model itself otherwise."""
    if not dist.active:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def all_sum(values: torch.Tensor, dist: Dist) -> torch.Tensor:
    """The sum over processes (the tensor itself for one process)."""
    if dist.active:
        torch.distributed.all_reduce(values, op=torch.distributed.ReduceOp.SUM)
    return values


def from_main(obj, dist: Dist):
    """Rank 0's ``obj`` on every process (pickled; the job's own processes only)."""
    if not dist.active:
        return obj
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def barrier(dist: Dist) -> None:
    if dist.active:
        torch.distributed.barrier()

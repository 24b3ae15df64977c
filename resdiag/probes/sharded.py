"""Gradient norms of sharded parameters: DTensor (FSDP2 ``fully_shard``) and FSDP1's flat shards.

A DTensor gradient is reduced over its mesh, ||g|| = sqrt(sum over shards ||g_shard||^2); a replicated
one is read locally. Under FSDP1 (``FullyShardedDataParallel(use_orig_params=True)``) each rank
holds a slice of every parameter's flattened gradient: the same sum, over the ranks' slices.
"""

from __future__ import annotations

import torch
from torch import nn

from resdiag.metrics.norms import l2_norms


def grad_norms(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """float64 L2 norms of (possibly DTensor-sharded) tensors, on their devices; one all-reduce for
    every sharded tensor together."""
    dtensor = dtensor_class()
    sharded = [i for i, t in enumerate(tensors) if dtensor is not None and isinstance(t, dtensor)]
    if not sharded:
        return l2_norms(tensors)
    out = l2_norms([t.to_local() if i in sharded else t for i, t in enumerate(tensors)])
    by_group: dict = {}
    for i in sharded:
        if any(p.is_shard() for p in tensors[i].placements):
            by_group.setdefault(tensors[i].device_mesh.get_group(), []).append(i)
    for group, idx in by_group.items():
        squares = torch.stack([out[i] for i in idx]).square()
        torch.distributed.all_reduce(squares, group=group)
        for i, v in zip(idx, squares.sqrt(), strict=True):
            out[i] = v
    return out


def flat_sharded(model: nn.Module) -> bool:
    """Whether ``model`` is an FSDP1 ``FullyShardedDataParallel``: each rank's ``.grad`` of a
    parameter (use_orig_params) is its slice of the flat shard, possibly empty or None."""
    return type(model).__name__ == "FullyShardedDataParallel" and world_size() > 1


def flat_sharded_norms(grads: list[torch.Tensor | None]) -> tuple[list[torch.Tensor | None], list[bool]]:
    """||g|| = sqrt(sum over ranks ||slice_r||^2) of every gradient, and whether any rank holds
    one; one all-reduce. Every rank must pass the same parameters in the same order."""
    device = next((g.device for g in grads if g is not None), torch.device("cpu"))
    zero = torch.zeros((), dtype=torch.float64, device=device)
    local = l2_norms([g for g in grads if g is not None])
    it = iter(local)
    squares = torch.stack([next(it).square() if g is not None else zero for g in grads]
                          + [torch.tensor(float(g is not None), dtype=torch.float64, device=device)
                             for g in grads]) if grads else zero.reshape(0)
    torch.distributed.all_reduce(squares)
    n = len(grads)
    seen = [bool(v) for v in (squares[n:] > 0).tolist()]
    return [s.sqrt() if ok else None for s, ok in zip(squares[:n], seen, strict=True)], seen


def world_size() -> int:
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def dtensor_class():
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # a torch built without distributed
        return None
    return DTensor

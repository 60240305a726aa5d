"""DistributedDataParallel plumbing: one process per device under torchrun; a no-op alone.

The CLI reads torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK) into a `DistContext`; the
library never reads the environment itself (torch's "env://" rendezvous does, inside torch).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in a distributed run. The default is a single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = "gloo"

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_process_group(ctx: DistContext, init_method: str = "env://") -> None:
    if ctx.enabled and not dist.is_initialized():
        dist.init_process_group(ctx.backend, init_method=init_method, rank=ctx.rank, world_size=ctx.world_size)


def destroy_process_group(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """DDP around `module` when distributed, else the module itself."""
    if not ctx.enabled:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def all_ranks_true(flag: bool, ctx: DistContext, device: torch.device) -> bool:
    """True only if `flag` holds on every rank (so all ranks skip a bad step together)."""
    if not ctx.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item() > 0)


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()

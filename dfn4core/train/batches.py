"""The order of training items: a fixed function of (seed, epoch, step), so a resumed run sees
exactly the batches the uninterrupted run would have seen, whatever the worker count."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dfn4core.errors import ConfigError
from dfn4core.train.distributed import DistContext

SEED_STRIDE = 1_000_003  # separates the permutations of different seeds and epochs


def steps_per_epoch(n_items: int, batch_size: int, world_size: int) -> int:
    steps = n_items // (batch_size * world_size)
    if steps < 1:
        raise ConfigError(f"the training set has {n_items} items: fewer than one batch of {batch_size} x {world_size} processes")
    return steps


class EpochBatches(Sampler[list[int]]):
    """This rank's batches of one epoch, from batch `first` on.

    The epoch's permutation depends only on (seed, epoch); step i takes items
    [i * B * W, (i + 1) * B * W) of it, and rank r the r-th B of those.
    """

    def __init__(self, n_items: int, batch_size: int, seed: int, epoch: int, first: int, dist: DistContext):
        generator = torch.Generator().manual_seed(seed * SEED_STRIDE + epoch)
        order = torch.randperm(n_items, generator=generator)
        per_step = batch_size * dist.world_size
        steps = steps_per_epoch(n_items, batch_size, dist.world_size)
        start = dist.rank * batch_size
        self.batches = [order[i * per_step + start : i * per_step + start + batch_size].tolist() for i in range(first, steps)]

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def epoch_loader(dataset: Dataset, cfg, dist: DistContext, epoch: int, first: int) -> DataLoader:
    """A DataLoader over this rank's batches of `epoch`, starting at batch `first`."""
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)  # before the workers start, so they see it
    sampler = EpochBatches(len(dataset), cfg.batch_size, cfg.seed, epoch, first, dist)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.num_workers, pin_memory=False)

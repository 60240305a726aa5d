"""Learning-rate schedule: linear warm-up to the peak, then cosine decay to the floor."""

from __future__ import annotations

import math

import torch


class WarmupCosine:
    """Multiplier of the peak learning rate at a given step (a picklable LambdaLR function).

    Args:
        warmup_steps: steps of linear warm-up from 0.
        total_steps: step at which the cosine reaches its floor.
        floor: final multiplier (lr_min / lr).
    """

    def __init__(self, warmup_steps: int, total_steps: int, floor: float):
        self.warmup_steps, self.total_steps, self.floor = warmup_steps, max(total_steps, 1), floor

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        span = max(self.total_steps - self.warmup_steps, 1)
        progress = min((step - self.warmup_steps) / span, 1.0)
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * progress))


def make_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, floor: float):
    """LambdaLR following WarmupCosine; its state_dict holds only numbers (safe to reload)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(warmup_steps, total_steps, floor))

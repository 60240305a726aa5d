"""Quantization-aware training: a DFN4 fine-tuned with fake-quant INT8 layers, then converted to INT8.

The steps are `dfn4core.train.loop.train_step` on a DATA.toml's train split; which layers become
INT8, and how, is `dfn4core.model.quantized`'s.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.ao import quantization as tq

from dfn4core.data.loader import build_dataset
from dfn4core.errors import ConfigError
from dfn4core.losses import GeneratorLoss
from dfn4core.losses.config import LossConfig
from dfn4core.model.dfnet4 import DFN4
from dfn4core.model.quantized import engine, quiet, wrap
from dfn4core.train.batches import epoch_loader, steps_per_epoch
from dfn4core.train.distributed import DistContext
from dfn4core.train.loop import StepContext, train_step

logger = logging.getLogger(__name__)

QAT_LR = 1e-4  # a tenth of the training peak: QAT only adapts the weights to the INT8 grid
QAT_BATCH = 4
QAT_GRAD_CLIP = 1.0


@dataclass(frozen=True)
class QatSettings:
    """Quantization-aware fine-tuning: steps of `dfn4core.train.loop.train_step` on the DATA.toml's train split."""

    steps: int = 200
    batch_size: int = QAT_BATCH
    lr: float = QAT_LR
    grad_clip: float = QAT_GRAD_CLIP
    seed: int = 0
    num_workers: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError("qat: steps and batch_size must be >= 1 and lr > 0")


def quantize_qat(
    model: DFN4, data: Any, settings: QatSettings, on_progress: Callable[[int, int], None] | None = None
) -> DFN4:
    """A copy of `model` fine-tuned with fake-quant on the static layers for settings.steps, then converted."""
    backend = engine()
    with quiet():
        torch.manual_seed(settings.seed)
        net = copy.deepcopy(model).cpu()
        net.freeze_norm = True  # the BatchNorm statistics stay the float model's (small QAT batches)
        net = wrap(net.train(), "qat", tq.get_default_qat_qconfig(backend))
        tq.prepare_qat(net, inplace=True)
        loss_fn = GeneratorLoss(LossConfig(), net.cfg)
        opt = torch.optim.AdamW(net.parameters(), settings.lr)
        dist = DistContext()
        ctx = StepContext(torch.device("cpu"), dist, settings.grad_clip, None, None)
        dataset = build_dataset(data, "train", net.cfg.dsp)
        per_epoch, step, skipped = steps_per_epoch(len(dataset), settings.batch_size, 1), 0, 0
        while step < settings.steps:
            for batch in epoch_loader(dataset, settings, dist, step // per_epoch, step % per_epoch):
                skipped += train_step(net, loss_fn, batch, opt, ctx) is None
                step += 1
                if on_progress is not None:
                    on_progress(step, settings.steps)
                if step >= settings.steps:
                    break
        if skipped:
            logger.warning("qat: %d of %d steps skipped (loss or gradient not finite)", skipped, settings.steps)
        return tq.convert(net.eval(), inplace=True)

"""The frozen teacher of a distillation run and its `DistillLoss`, as one module `train()` adds to every step.

Only the loss is a submodule, so `state_dict()` and `parameters()` hold the embedding projection
alone; the teacher is rebuilt from its checkpoint on resume.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from dfn4core.losses.distill import DistillLoss
from dfn4core.model.checkpoint import load_model
from dfn4core.model.dfnet4 import DFN4, DFN4Output
from dfn4core.train.config import TrainConfig

logger = logging.getLogger(__name__)


class Distiller(nn.Module):
    """A frozen teacher plus the trainable `DistillLoss` (the embedding projection).

    Only the loss is a submodule, so `state_dict()` and `parameters()` hold the projection alone;
    the teacher is rebuilt from its checkpoint on resume.

    Args:
        cfg: the training config; `cfg.distill.teacher` names the teacher checkpoint.
        student: the student model's config comes from here.
        device: where the teacher runs.
    Raises:
        CheckpointError: the teacher checkpoint cannot be read.
        ConfigError: the teacher's DSP config differs from the student's.
    """

    def __init__(self, cfg: TrainConfig, student: DFN4, device: torch.device):
        super().__init__()
        teacher = load_model(cfg.distill.teacher, device=device).eval().requires_grad_(False)
        self.loss = DistillLoss(cfg.distill, student.cfg, teacher.cfg).to(device)
        object.__setattr__(self, "teacher", teacher)  # not a submodule: frozen, never saved
        logger.info("distilling from %s", cfg.distill.teacher)

    def forward(self, noisy: Tensor, student_out: DFN4Output) -> dict[str, Tensor]:
        """The distillation terms for one batch (the `extra_loss` of `train_step`)."""
        with torch.no_grad():
            teacher_out = self.teacher(noisy)
        return self.loss(student_out, teacher_out)

"""Distillation on the training loop: a frozen teacher and its `DistillLoss`, plugged into `train()`.

The run is an ordinary training run (same run directory, checkpoints, resume, logging) whose
config names a teacher in `[distill]`; `train()` then adds the distillation terms to every
generator step and keeps the embedding projection in the optimizer and the checkpoints.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch
from torch import Tensor, nn

from dfn4core.errors import ConfigError
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


def distill(cfg: TrainConfig, data, run_dir: str | Path, teacher: str | Path, **kwargs):
    """`train()` with `teacher` as the frozen teacher, stored in the run's config (a file as an absolute path).

    Args:
        cfg: training settings of the student (variant, steps, losses, distill weights).
        data: training and validation sources (a DataConfig).
        run_dir: output folder, as for `train()`.
        teacher: a shipped model name ("full") or the checkpoint of a trained DFN4.
        **kwargs: passed to `train()` (resume, device, dist, on_progress, init_method).
    Returns:
        The TrainResult of the student's run.
    """
    from dfn4core.pretrained import is_model_name
    from dfn4core.train.runner import train

    named = is_model_name(teacher)  # a shipped model ("full") stays a name; a file is stored absolute
    teacher = str(teacher) if named else str(Path(teacher).resolve())
    if kwargs.get("resume") and cfg.distill.teacher not in ("", teacher):
        raise ConfigError(f"the run distils from {cfg.distill.teacher}, not {teacher}: a resumed run keeps its teacher")
    distill_cfg = dataclasses.replace(cfg.distill, teacher=teacher)
    return train(dataclasses.replace(cfg, distill=distill_cfg), data, run_dir, **kwargs)

"""Distillation on the training loop: `train()` with a frozen teacher named in the config.

The run is an ordinary training run (same run directory, checkpoints, resume, logging) whose
config names a teacher in `[distill]`; `train()` then adds the distillation terms of
`dfn4core.train.teacher.Distiller` to every generator step and keeps the embedding projection in
the optimizer and the checkpoints.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from dfn4core.errors import ConfigError
from dfn4core.pretrained import is_model_name
from dfn4core.train import runner
from dfn4core.train.config import TrainConfig


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
    named = is_model_name(teacher)  # a shipped model ("full") stays a name; a file is stored absolute
    teacher = str(teacher) if named else str(Path(teacher).resolve())
    if kwargs.get("resume") and cfg.distill.teacher not in ("", teacher):
        raise ConfigError(f"the run distils from {cfg.distill.teacher}, not {teacher}: a resumed run keeps its teacher")
    distill_cfg = dataclasses.replace(cfg.distill, teacher=teacher)
    return runner.train(dataclasses.replace(cfg, distill=distill_cfg), data, run_dir, **kwargs)

"""`dfn4 distill`: a frozen teacher (a shipped model or a checkpoint) teaches a student on the training data, as `dfn4 train` runs."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from dfn4cli._options import (
    BatchSizeOpt,
    DataOpt,
    Device,
    DeviceOpt,
    InitOpt,
    LrOpt,
    ResumeOpt,
    RunDirOpt,
    SeedOpt,
    StepsOpt,
    ThreadsOpt,
    TrainConfigOpt,
    WorkersOpt,
)
from dfn4cli.train import run_and_report


def distill(
    teacher: Annotated[str, typer.Option("--teacher", help="Trained teacher: a shipped model (full) or a checkpoint.")],
    data: DataOpt,
    out: RunDirOpt,
    variant: Annotated[str, typer.Option(help="Student variant: full | lite | tiny (overrides the config).")] = "lite",
    config: TrainConfigOpt = None,
    resume: ResumeOpt = False,
    steps: StepsOpt = None,
    init: InitOpt = None,
    batch_size: BatchSizeOpt = None,
    lr: LrOpt = None,
    seed: SeedOpt = None,
    num_workers: WorkersOpt = None,
    device: DeviceOpt = Device.auto,
    threads: ThreadsOpt = None,
) -> None:
    """Distil a teacher into a (smaller) student: output spectra, ERB gains, deep filter and embeddings, plus the task losses."""
    from dfn4core.train.config import load_train_config
    from dfn4core.train.distill import distill as run_distillation

    cfg = load_train_config(config).replace(variant=variant, steps=steps, batch_size=batch_size, lr=lr, seed=seed, num_workers=num_workers, init=init)

    def run(cfg, data_cfg, run_dir, **kwargs):
        return run_distillation(cfg, data_cfg, run_dir, teacher, **kwargs)

    run_and_report(run, cfg, data, out, resume=resume, device=device, threads=threads)

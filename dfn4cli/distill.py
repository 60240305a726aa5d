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
    out: RunDirOpt,
    data: DataOpt = None,
    variant: Annotated[
        Optional[str], typer.Option(help="Student variant: full | lite | tiny (overrides the config).", show_default="lite")
    ] = None,
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
    from dfn4core.train.distill import distill as run_distillation

    variant = variant or (None if resume else "lite")  # a resumed run keeps its own
    overrides = dict(variant=variant, steps=steps, batch_size=batch_size, lr=lr, seed=seed, num_workers=num_workers, init=init)

    def run(cfg, data_cfg, run_dir, **kwargs):
        return run_distillation(cfg, data_cfg, run_dir, teacher, **kwargs)

    run_and_report(run, out, data, config, overrides, resume=resume, device=device, threads=threads,
                   resume_command=f"dfn4 distill --teacher {teacher} --out {out} --resume")  # fmt: skip

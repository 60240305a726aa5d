"""`dfn4 distill`: a frozen teacher checkpoint teaches a student on the training data, as `dfn4 train` runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from dfn4cli._options import (
    BatchSizeOpt,
    DataOpt,
    Device,
    DeviceOpt,
    LrOpt,
    ResumeOpt,
    RunDirOpt,
    SeedOpt,
    StepsOpt,
    ThreadsOpt,
    TrainConfigOpt,
    WorkersOpt,
    resolve_device,
    set_threads,
)
from dfn4cli._render import TrainDisplay


def distill(
    teacher: Annotated[Path, typer.Option("--teacher", exists=True, dir_okay=False, help="Trained teacher checkpoint.")],
    data: DataOpt,
    out: RunDirOpt,
    variant: Annotated[str, typer.Option(help="Student variant: full | lite | tiny (overrides the config).")] = "lite",
    config: TrainConfigOpt = None,
    resume: ResumeOpt = False,
    steps: StepsOpt = None,
    batch_size: BatchSizeOpt = None,
    lr: LrOpt = None,
    seed: SeedOpt = None,
    num_workers: WorkersOpt = None,
    device: DeviceOpt = Device.auto,
    threads: ThreadsOpt = None,
) -> None:
    """Distil a teacher into a (smaller) student: output spectra, ERB gains, deep filter and embeddings, plus the task losses."""
    from dfn4core.data.config import load_data_config
    from dfn4core.train.config import load_train_config
    from dfn4core.train.distill import distill as run_distillation

    set_threads(threads)
    cfg = load_train_config(config).replace(variant=variant, steps=steps, batch_size=batch_size, lr=lr, seed=seed, num_workers=num_workers)
    console = Console(stderr=True)
    with TrainDisplay(console) as display:
        result = run_distillation(cfg, load_data_config(data), out, teacher, resume=resume, device=resolve_device(device), on_progress=display.update)
    console.print(f"[green]done[/]: {result.step} steps ({result.skipped_steps} skipped); last checkpoint {result.last_checkpoint}")
    if result.best_checkpoint is not None:
        console.print(f"best model ({cfg.best_metric} = {result.best_value:.3f}): {result.best_checkpoint}")

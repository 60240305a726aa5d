"""`dfn4 distill`: a frozen teacher checkpoint teaches a student on the training data, as `dfn4 train` runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from dfn4cli._options import Device, DeviceOpt, ThreadsOpt, resolve_device, set_threads
from dfn4cli._render import TrainDisplay


def distill(
    teacher: Annotated[Path, typer.Option("--teacher", exists=True, dir_okay=False, help="Trained teacher checkpoint.")],
    data: Annotated[Path, typer.Option("--data", exists=True, dir_okay=False, help="Data sources (TOML).")],
    out: Annotated[Path, typer.Option("--out", "-o", file_okay=False, help="Run directory.")],
    variant: Annotated[str, typer.Option(help="Student variant: full | lite | tiny (overrides the config).")] = "lite",
    config: Annotated[Optional[Path], typer.Option("--config", exists=True, dir_okay=False, help="Training settings (TOML), [distill] weights included.")] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Continue the run in --out exactly.")] = False,
    steps: Annotated[Optional[int], typer.Option(min=1, help="Total steps.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=1, help="Items per step and process.")] = None,
    lr: Annotated[Optional[float], typer.Option(min=0, help="Peak learning rate.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed.")] = None,
    num_workers: Annotated[Optional[int], typer.Option(min=0, help="Data loader workers.")] = None,
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

"""`dfn4 train`: train a DFN4 on the data a TOML file describes, resumable, single process or DDP."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

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
    resolve_device,
    set_threads,
)
from dfn4cli._render import TrainDisplay


def train(
    data: DataOpt,
    out: RunDirOpt,
    variant: Annotated[Optional[str], typer.Option(show_default="from --config", help="full | lite | tiny (overrides the config).")] = None,
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
    """Train a model. Under `torchrun --nproc_per_node N -m dfn4cli train ...` each process trains one shard (DDP)."""
    from dfn4core.train.config import load_train_config
    from dfn4core.train.runner import train as run_training

    cfg = load_train_config(config).replace(variant=variant, steps=steps, batch_size=batch_size, lr=lr, seed=seed, num_workers=num_workers, init=init)
    run_and_report(run_training, cfg, data, out, resume=resume, device=device, threads=threads)


def run_and_report(run, cfg, data: Path, out: Path, *, resume: bool, device: Device, threads: int | None) -> None:
    """Sets up device, threads and DDP from torchrun's environment, runs `run` (train or distill)
    with a progress display on rank 0, and prints where the results are."""
    from dfn4core.data.config import load_data_config

    dist = _dist_from_env()
    torch_device = resolve_device(device)
    if torch_device.type == "cuda" and dist.enabled:
        import torch

        torch_device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(torch_device)
    set_threads(threads)
    console = Console(stderr=True)
    with TrainDisplay(console, enabled=dist.is_main) as display:
        result = run(cfg, load_data_config(data), out, resume=resume, device=torch_device, dist=dist, on_progress=display.update)
    if dist.is_main:
        console.print(f"[green]done[/]: {result.step} steps ({result.skipped_steps} skipped); last checkpoint {result.last_checkpoint}")
        if result.best_checkpoint is not None:
            console.print(f"best model ({cfg.best_metric} = {result.best_value:.3f}): {result.best_checkpoint}")


def _dist_from_env():
    """torchrun's environment as a DistContext (the CLI, not the library, reads the environment)."""
    from dfn4core.train.distributed import DistContext

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return DistContext()
    import torch

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    return DistContext(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")), backend)

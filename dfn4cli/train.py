"""`dfn4 train`: train a DFN4 on the data a TOML file describes, resumable, single process or DDP."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from dfn4cli._options import Device, DeviceOpt, ThreadsOpt, resolve_device, set_threads
from dfn4cli._render import TrainDisplay


def train(
    data: Annotated[Path, typer.Option("--data", exists=True, dir_okay=False, help="Data sources (TOML).")],
    out: Annotated[Path, typer.Option("--out", "-o", file_okay=False, help="Run directory.")],
    variant: Annotated[Optional[str], typer.Option(help="full | lite | tiny (overrides the config).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", exists=True, dir_okay=False, help="Training settings (TOML).")] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Continue the run in --out exactly.")] = False,
    steps: Annotated[Optional[int], typer.Option(min=1, help="Total steps.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=1, help="Items per step and process.")] = None,
    lr: Annotated[Optional[float], typer.Option(min=0, help="Peak learning rate.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed.")] = None,
    num_workers: Annotated[Optional[int], typer.Option(min=0, help="Data loader workers.")] = None,
    device: DeviceOpt = Device.auto,
    threads: ThreadsOpt = None,
) -> None:
    """Train a model. Under `torchrun --nproc_per_node N -m dfn4cli train ...` each process trains one shard (DDP)."""
    from dfn4core.data.config import load_data_config
    from dfn4core.train.config import load_train_config
    from dfn4core.train.distributed import DistContext
    from dfn4core.train.runner import train as run_training

    dist = _dist_from_env()
    torch_device = resolve_device(device)
    if torch_device.type == "cuda" and dist.enabled:
        import torch

        torch_device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(torch_device)
    set_threads(threads)
    cfg = load_train_config(config).replace(variant=variant, steps=steps, batch_size=batch_size, lr=lr, seed=seed, num_workers=num_workers)
    console = Console(stderr=True)
    with TrainDisplay(console, enabled=dist.is_main) as display:
        result = run_training(cfg, load_data_config(data), out, resume=resume, device=torch_device, dist=dist, on_progress=display.update)
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

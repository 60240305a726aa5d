"""`dfn4 train`: train a DFN4 on the data a TOML file describes, resumable, single process or DDP."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

from dfn4cli._options import RunOptions, resolve_device, run_options, set_threads
from dfn4cli._render import TrainDisplay

INTERRUPTED_EXIT = 130  # the shell's code for Ctrl-C; SIGTERM is handled (and ends) the same way


@run_options
def train(
    options: RunOptions,
    variant: Annotated[Optional[str], typer.Option(show_default="from --config", help="full | lite | tiny (overrides the config).")] = None,
) -> None:
    """Train a model. Under `torchrun --nproc_per_node N -m dfn4cli train ...` each process trains one shard (DDP)."""
    from dfn4core.train.runner import train as run_training

    run_and_report(run_training, options, options.overrides(variant),
                   resume_command=f"dfn4 train --out {options.out} --resume")  # fmt: skip


def run_and_report(run, options: RunOptions, overrides: dict[str, Any], *, resume_command: str) -> None:
    """Reads and checks the configs (a resumed run's from its folder), sets up device, threads and
    DDP from torchrun's environment, runs `run` (train or distill) with a progress display on rank 0,
    and prints where the results are; Ctrl-C or SIGTERM checkpoints the current step and stops."""
    from dfn4core.errors import TrainingInterrupted
    from dfn4core.train.resume import run_configs

    out, resume = options.out, options.resume
    if options.data is None and not resume:
        raise typer.BadParameter("needed for a new run (a resumed run reads the data.toml of its folder)", param_hint="--data")
    cfg, data_cfg = run_configs(out, resume=resume, config=options.config, data=options.data, **overrides)
    dist = _dist_from_env()
    torch_device = resolve_device(options.device)
    if torch_device.type == "cuda" and dist.enabled:
        import torch

        torch_device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(torch_device)
    set_threads(options.threads)
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        with TrainDisplay(console, enabled=dist.is_main) as display, _stop_on_signals(console) as stop:
            result = run(cfg, data_cfg, out, resume=resume, device=torch_device, dist=dist,
                         on_progress=display.update, should_stop=lambda: bool(stop))  # fmt: skip
    except TrainingInterrupted as err:
        if dist.is_main:
            console.print(f"interrupted at step {err.step} (checkpoint {escape(str(err.checkpoint))}); "
                          f"resume with: {escape(resume_command)}")  # fmt: skip
        raise typer.Exit(INTERRUPTED_EXIT) from None
    if dist.is_main:
        console.print(f"[green]done[/]: {result.step} steps ({result.skipped_steps} skipped); last checkpoint {result.last_checkpoint}")
        if result.best_checkpoint is not None:
            console.print(f"best model ({cfg.best_metric} = {result.best_value:.3f}): {result.best_checkpoint}")


@contextmanager
def _stop_on_signals(console: Console) -> Iterator[list[int]]:
    """Yields a list that gets the number of the first SIGINT or SIGTERM; a second one stops at once.

    Only the main thread may set handlers: elsewhere (the app run from a thread) signals keep theirs.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def on_signal(signum: int, frame: Any) -> None:
        if received:  # the second time: no more waiting for the step to end
            signal.signal(signum, previous[signum])
            signal.raise_signal(signum)
            return
        received.append(signum)
        console.print(f"{signal.Signals(signum).name}: stopping after this step with a checkpoint (again to quit at once)")

    for s in previous:
        signal.signal(s, on_signal)
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _dist_from_env():
    """torchrun's environment as a DistContext (the CLI, not the library, reads the environment)."""
    from dfn4core.train.distributed import DistContext

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return DistContext()
    import torch

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    return DistContext(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")), backend)

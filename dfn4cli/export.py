"""`dfn4 export`: write a checkpoint as an ONNX streaming graph (checked against torch) and its model.json."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from dfn4cli._options import RequiredModelOpt
from dfn4cli._render import StageProgress

CHECK_AUDIO_DEFAULT = "a generated speech-like signal (dfn4core.synth)"


def export(
    model: RequiredModelOpt,
    out_dir: Annotated[Path, typer.Option("--out-dir", "-o", file_okay=False, help="Folder for the graph.")],
    onnx: Annotated[bool, typer.Option("--onnx/--no-onnx", help="Write the ONNX streaming graph.")] = True,
    opset: Annotated[int, typer.Option(min=14, help="ONNX opset of the graphs.")] = 17,
    offline: Annotated[
        bool, typer.Option("--offline/--no-offline", help="Also write model_offline.onnx (whole utterances).")
    ] = False,
    int8: Annotated[
        bool, typer.Option("--int8/--no-int8", help="Also write model.int8.onnx (INT8 network weights).")
    ] = False,
    check_audio: Annotated[
        Optional[Path],
        typer.Option(exists=True, dir_okay=False, show_default=CHECK_AUDIO_DEFAULT,
                     help="Audio to check the graph against torch on."),
    ] = None,  # fmt: skip
    overwrite: Annotated[
        bool, typer.Option("--overwrite/--no-overwrite", help="Replace an earlier export in OUT_DIR (its other files are removed).")
    ] = False,
) -> None:
    """Export MODEL as ONE streaming ONNX graph (a hop and every state in, the enhanced hop and new states out)."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if not onnx:
        err.print("[bold red]error:[/] nothing to export: ONNX is the only format (--onnx)")
        raise typer.Exit(2)
    from dfn4core import load_model
    from dfn4core.export.onnx import export_onnx, validation_audio
    from dfn4core.pretrained import resolve_model

    with StageProgress(err, "export") as progress:
        progress.stage("loading the model")
        checkpoint = resolve_model(model)
        net = load_model(checkpoint, device="cpu")
        audio = validation_audio(check_audio, net.cfg.dsp.sr)
        inputs = [checkpoint, *([check_audio] if check_audio else [])]
        report = export_onnx(net, out_dir, audio, opset=opset, offline=offline, int8=int8, overwrite=overwrite,
                             inputs=inputs, on_stage=progress.stage)  # fmt: skip
    out = Console(soft_wrap=True, highlight=False)
    int8_path = report.int8.path if report.int8 else None
    for path in (report.onnx_path, report.json_path, report.offline_path, int8_path):
        if path is not None:
            out.print(f"wrote {escape(str(path))}")
    found = report.agreement
    out.print(
        f"checked against torch on {found.seconds:.2f} s of {escape(str(check_audio or 'generated audio'))}: "
        f"max abs error {found.max_abs_error:.2e}, SNR of the difference {found.snr_db:.1f} dB; "
        f"graph {report.size_bytes / 1e6:.1f} MB"
    )
    if report.int8 is not None:
        q = report.int8
        out.print(
            f"INT8: {q.quantized_nodes} matmul weights in 8 bits, {q.int8_bytes / 1e6:.1f} MB "
            f"(float {q.float_bytes / 1e6:.1f} MB), SI-SDR of its output against the float graph {q.si_sdr_db:.1f} dB"
        )

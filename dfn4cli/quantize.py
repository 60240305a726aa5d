"""`dfn4 quantize`: an INT8 torch model (dynamic, static or quantization-aware) and its report."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dfn4cli._options import RequiredModelOpt
from dfn4cli._render import StageProgress


class Method(str, Enum):
    dynamic = "dynamic"
    static = "static"
    qat = "qat"


def quantize(
    model: RequiredModelOpt,
    method: Annotated[Method, typer.Option(case_sensitive=False, help="dynamic: INT8 Linear weights; static: INT8 "
                                           "Linear/Conv weights and activations; qat: static after fine-tuning.")],
    out: Annotated[Path, typer.Option("--out", "-o", dir_okay=False, help="The INT8 model (.pt); report beside it.")],
    calib_data: Annotated[
        Optional[Path],
        typer.Option(exists=True, dir_okay=False, show_default="generated mixtures",
                     help="DATA.toml: calibration/fine-tuning (train split) and validation (valid split)."),
    ] = None,  # fmt: skip
    steps: Annotated[int, typer.Option(min=1, help="qat fine-tuning steps.")] = 200,
    overwrite: Annotated[bool, typer.Option("--overwrite/--no-overwrite", help="Replace an existing OUT.")] = False,
) -> None:
    """Quantize MODEL to INT8 for the CPU; the recurrent state, scan and deep filter stay float."""
    from dfn4core.data.config import load_data_config
    from dfn4core.export.torch_int8 import QatSettings, quantize_checkpoint

    data = load_data_config(calib_data) if calib_data is not None else None
    with StageProgress(Console(stderr=True, highlight=False), f"quantize ({method.value})") as progress:
        report = quantize_checkpoint(model, out, method.value, data=data, qat=QatSettings(steps=steps), overwrite=overwrite,
                                     on_progress=progress.steps, on_stage=progress.stage)  # fmt: skip
    console = Console(soft_wrap=True, highlight=False)
    console.print(report_table(report.to_dict()))
    console.print(f"wrote {escape(str(report.path))} and {escape(str(report.report_path))}")


def report_table(r: dict) -> Table:
    """float vs INT8: size, 1-thread speed, and SI-SDR/PESQ on the validation set."""
    m = r["metrics"]

    def fmt(value: float | None, spec: str = ".2f") -> str:
        return "-" if value is None else format(value, spec)

    table = Table(title=f"dfn4 quantize ({r['method']}, {r['backend']}): {len(r['quantized_layers'])} INT8 layers")
    for name, justify in (("", "left"), ("float", "right"), ("INT8", "right")):
        table.add_column(name, justify=justify)
    table.add_row("file size (MB)", f"{r['float_bytes'] / 1e6:.3f}", f"{r['quantized_bytes'] / 1e6:.3f}")
    table.add_row("offline RTF, 1 thread", f"{r['rtf']['float']:.4f}", f"{r['rtf']['quantized']:.4f}")
    table.add_row("step ms per hop, 1 thread", f"{r['step_ms']['float']:.3f}", f"{r['step_ms']['quantized']:.3f}")
    table.add_row("SI-SDR vs clean (dB)", fmt(m["si_sdr_float_clean"]), fmt(m["si_sdr_quantized_clean"]))
    table.add_row("PESQ vs clean", fmt(m["pesq_float_clean"]), fmt(m["pesq_quantized_clean"]))
    table.add_row("SI-SDR / PESQ vs float output", "", f"{fmt(m['si_sdr_vs_float'], '.1f')} dB / {fmt(m['pesq_vs_float'])}")
    table.caption = (f"validation: {r['validation']} (noisy input: SI-SDR {fmt(m['si_sdr_noisy_clean'])} dB, "
                     f"PESQ {fmt(m['pesq_noisy_clean'])}); calibration: {r['calibration']}")  # fmt: skip
    return table

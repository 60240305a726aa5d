"""`dfn4 benchmark`'s measurement: every figure of each model on each backend at each thread count,
as plain dicts ready for JSON, with the machine they were measured on."""

from __future__ import annotations

import dataclasses
import datetime
import importlib.util
import logging
import os
import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dfn4core.benchmark.cost import count_macs, count_params, latency
from dfn4core.benchmark.timing import BenchmarkSettings, offline_rtf, peak_memory, step_latency
from dfn4core.errors import ConfigError
from dfn4core.model.dfnet4 import DFN4
from dfn4core.model.fuse import fuse_for_inference

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx", "onnx-int8")


def machine_info() -> dict[str, Any]:
    """CPU model, cores, library versions and the date."""
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else cpu
    cpu = cpu if cpu != "unknown" else (platform.processor() or cpu)
    ort = None
    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime

        ort = onnxruntime.__version__
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch": torch.__version__,
        "onnxruntime": ort,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def check_backend(backend: str) -> None:
    """Raises ConfigError for an unknown backend, or an ONNX one while onnx or onnxruntime is missing."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend.startswith("onnx") and (importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None):
        raise ConfigError(f"backend {backend!r} needs the onnx and onnxruntime packages: pip install 'dfn4[export]'")


def benchmark_model(
    name: str, model: DFN4, threads: int, settings: BenchmarkSettings, backend: str = "torch", dfn3: bool = False
) -> dict[str, Any]:
    """Every figure of one model on one backend at one thread count.

    Args:
        name: a label for the result (variant name or checkpoint path).
        model: the model to measure (put in eval mode).
        threads: torch intra-op threads, set for this measurement and restored afterwards.
        settings: lengths, repetitions and warm-ups.
        backend: "torch" (eager, CPU, no grad), "onnx" (the exported streaming graph in
            onnxruntime, one call per hop, `threads` intra-op threads) or "onnx-int8" (its INT8
            version, `dfn4 export --int8`).
        dfn3: time DeepFilterNet3's official runtime in turn with the streaming hops (`run_benchmark`).
    Returns:
        {name, backend, threads, params, macs_per_s, offline, streaming, memory, latency, config}.
    """
    check_backend(backend)
    model = model.eval()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        logger.info("benchmark %s (%s, %d threads)", name, backend, threads)
        reference = None
        if dfn3:
            from dfn4core.benchmark.dfn3 import Dfn3Runtime

            reference = Dfn3Runtime().step
        if backend.startswith("onnx"):
            from dfn4core.benchmark.onnx import onnx_figures  # needs onnx and onnxruntime

            timed = onnx_figures(model, settings, threads, int8=backend == "onnx-int8", reference=reference)
        else:  # the fused copy, as `dfn4 enhance` runs it
            fused = fuse_for_inference(model)
            timed = {"offline": offline_rtf(fused, settings), "streaming": step_latency(fused, settings, reference),
                     "memory": peak_memory(fused, settings)}  # fmt: skip
        if dfn3:
            timed["streaming"]["x_dfn3"] = timed["streaming"]["median_ms"] / timed["streaming"]["reference"]["median_ms"]
        return {
            "name": name,
            "backend": backend,
            "threads": threads,
            "temporal": model.cfg.temporal,
            "params": count_params(model),
            "macs_per_s": count_macs(model),
            **timed,
            "latency": latency(model.cfg),
            "config": model.cfg.to_dict(),
        }
    finally:
        torch.set_num_threads(previous)


def run_benchmark(
    models: dict[str, DFN4],
    threads: Sequence[int] = (1,),
    backends: Sequence[str] = ("torch",),
    settings: BenchmarkSettings | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    dfn3: bool = False,
) -> dict[str, Any]:
    """Measure each model on each backend at each thread count.

    Args:
        models: label -> model (see `variant_config` and `build`, or `load_model`).
        threads: intra-op thread counts, each set explicitly.
        backends: "torch", "onnx" (the exported streaming graph in onnxruntime), "onnx-int8".
        settings: lengths, repetitions, warm-ups.
        on_progress: called with (done, total) after each measurement.
        dfn3: also time DeepFilterNet3's official runtime (`dfn4core.benchmark.dfn3`), one hop of it
            after each streaming hop of each measurement, in the same loop, and give each
            measurement's streaming median as a ratio to DFN3's (the form of the speed targets;
            timed hop by hop in turn, the ratio holds while the machine's speed drifts).
    Returns:
        {"machine": machine_info(), "settings": ..., "results": [benchmark_model(...), ...]}, and
        with dfn3 "dfn3": {"runtime"} and, in each result's "streaming", "reference" (DFN3's
        times) and "x_dfn3".
    Raises:
        ConfigError: no models, a thread count < 1, an unavailable backend, or dfn3 without its runtime.
    """
    settings = settings or BenchmarkSettings()
    if not models or not threads or min(threads) < 1:
        raise ConfigError("benchmark: need at least one model and thread counts >= 1")
    for backend in backends:
        check_backend(backend)
    if dfn3:
        from dfn4core.benchmark.dfn3 import RUNTIME, require_runtime

        require_runtime()  # raises ConfigError before any model is measured
    jobs = [(n, b, t) for n in models for b in backends for t in threads]
    results = []
    for i, (name, backend, n_threads) in enumerate(jobs):
        results.append(benchmark_model(name, models[name], n_threads, settings, backend, dfn3=dfn3))
        if on_progress is not None:
            on_progress(i + 1, len(jobs))
    report = {"machine": machine_info(), "settings": dataclasses.asdict(settings), "results": results}
    if dfn3:
        report["dfn3"] = {"runtime": RUNTIME}
    return report

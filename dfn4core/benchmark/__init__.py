"""What a DFN4 costs on this machine (`dfn4 benchmark`): parameters, MACs per second of audio, offline
real-time factor, streaming time per hop, peak memory and algorithmic latency, as plain dicts ready for JSON.

`cost` counts (parameters, MACs, latency), `timing` times torch (and holds the settings), `onnx` times
the exported graph (float or INT8) in onnxruntime, `dfn3` times DeepFilterNet3's official runtime (the
reference of the speed targets), `report` runs every model, backend and thread count, `plot` draws
the report, `quantization` compares an INT8 model with its float model.
"""

from __future__ import annotations

from dfn4core.benchmark.cost import count_macs, count_params, latency
from dfn4core.benchmark.plot import plot_benchmark
from dfn4core.benchmark.report import BACKENDS, benchmark_model, check_backend, machine_info, run_benchmark
from dfn4core.benchmark.timing import (
    BenchmarkSettings,
    build,
    make_audio,
    offline_rtf,
    peak_memory,
    step_latency,
    variant_config,
)

__all__ = [
    "BACKENDS",
    "BenchmarkSettings",
    "benchmark_model",
    "build",
    "check_backend",
    "count_macs",
    "count_params",
    "latency",
    "machine_info",
    "make_audio",
    "offline_rtf",
    "peak_memory",
    "plot_benchmark",
    "run_benchmark",
    "step_latency",
    "variant_config",
]

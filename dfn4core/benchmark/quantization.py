"""How an INT8 model compares with its float model: time at 1 thread, and SI-SDR and PESQ on audio pairs.

The report half of `dfn4 quantize` (`dfn4core.export.torch_int8` writes the model, then measures it here).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from dfn4core.benchmark.timing import BenchmarkSettings, offline_rtf, step_latency
from dfn4core.streaming import enhance
from dfn4core.errors import MetricError
from dfn4core.metrics import pesq, si_sdr
from dfn4core.model.dfnet4 import DFN4

logger = logging.getLogger(__name__)


def compare_timings(float_model: DFN4, quantized: DFN4, settings: BenchmarkSettings) -> tuple[dict[str, float], dict[str, float]]:
    """Offline RTF and median step ms of both models at 1 thread, with this package's timers."""
    previous, rtf, step_ms = torch.get_num_threads(), {}, {}
    torch.set_num_threads(1)
    try:
        for name, net in (("float", float_model), ("quantized", quantized)):
            rtf[name] = offline_rtf(net, settings)["rtf"]
            step_ms[name] = step_latency(net, settings)["median_ms"]
    finally:
        torch.set_num_threads(previous)
    return rtf, step_ms


@torch.no_grad()
def compare_outputs(float_model: DFN4, quantized: DFN4, pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float | None]:
    """Mean SI-SDR and PESQ of the quantized output against the float output, and of both (and the input) against clean."""
    sr, scores = float_model.cfg.dsp.sr, {}
    for noisy, clean in pairs:
        out_float, out_quant = enhance(float_model, noisy, sr), enhance(quantized, noisy, sr)
        for name, ref, est in (("vs_float", out_float, out_quant), ("float_clean", clean, out_float),
                               ("quantized_clean", clean, out_quant), ("noisy_clean", clean, noisy)):  # fmt: skip
            for metric, fn in (("si_sdr", si_sdr), ("pesq", pesq)):
                try:
                    scores.setdefault(f"{metric}_{name}", []).append(fn(ref, est, sr))
                except MetricError as err:
                    logger.debug("%s %s skipped: %s", metric, name, err)
                    scores.setdefault(f"{metric}_{name}", [])
    return {k: (float(np.mean(v)) if v and all(map(math.isfinite, v)) else None) for k, v in scores.items()}

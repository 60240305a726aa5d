"""What a DFN4 costs on this machine: parameters, MACs per second of audio, offline real-time factor,
streaming time per hop, peak memory and algorithmic latency, as plain dicts ready for JSON.

MACs are counted, not timed: `torch.utils.flop_counter.FlopCounterMode` over `model(wave)` on 1 s
(MACs = flops / 2; it sees mm, bmm, addmm and convolutions, not torch.fft or elementwise ops), plus
two analytic elementwise terms it cannot see: the selective scan and the deep filter.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.util
import logging
import math
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from dfn4core.config import ModelConfig
from dfn4core.dsp.dft import FactoredRealDft
from dfn4core.errors import ConfigError
from dfn4core.model.dfnet4 import DFN4
from dfn4core.plot import pyplot, save_figure

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx")
BLOCKS = ("features", "encoder", "erb_decoder", "df_decoder", "order_predictor", "mrdf")
SCAN_MACS_PER_ELEMENT = 3  # dt*A, (dt*u)*B and the decay*h + input addcmul; exp() not counted
COMPLEX_MAC = 4  # real MACs of one complex multiply-accumulate
SEED = 0


@dataclass(frozen=True)
class BenchmarkSettings:
    """How long and how often to measure.

    Args:
        seconds: audio length of the offline real-time-factor run and of the memory run.
        hops: timed streaming hops (after `warmup_hops`).
        warmup_hops: untimed streaming hops first (thread pool, allocator, caches).
        repeats: timed offline runs; the median is reported.
        warmup_runs: untimed offline runs first.
        memory_process: "fresh" measures peak memory in a spawned process (accurate: nothing
            cached by earlier measurements; costs a torch import), "same" in this process (fast;
            memory the allocator kept from earlier runs hides part of the growth).
    """

    seconds: float = 10.0
    hops: int = 300
    warmup_hops: int = 50
    repeats: int = 5
    warmup_runs: int = 1
    memory_process: str = "fresh"

    def __post_init__(self) -> None:
        if self.memory_process not in ("fresh", "same"):
            raise ConfigError(f"memory_process must be 'fresh' or 'same', got {self.memory_process!r}")
        if self.seconds <= 0 or min(self.hops, self.repeats) < 1 or min(self.warmup_hops, self.warmup_runs) < 0:
            raise ConfigError("benchmark: need seconds > 0, hops and repeats >= 1, warm-ups >= 0")


def variant_config(name: str) -> ModelConfig:
    """'full', 'lite', 'tiny', or any of them with '-gru' (temporal="gru", the ablation at equal width)."""
    base, gru = (name[:-4], True) if name.endswith("-gru") else (name, False)
    if base not in ("full", "lite", "tiny"):
        raise ConfigError(f"unknown variant {name!r}: choose full, lite or tiny (optionally with -gru)")
    cfg = getattr(ModelConfig, base)()
    return dataclasses.replace(cfg, temporal="gru") if gru else cfg


def build(cfg: ModelConfig) -> DFN4:
    """A DFN4 with seeded random weights (the cost of a pass does not depend on the weights)."""
    torch.manual_seed(SEED)
    return DFN4(cfg).eval()


def make_audio(seconds: float, sr: int, seed: int = SEED) -> Tensor:
    """(1, N) float32: a harmonic tone plus white noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    tone = sum(0.1 / k * np.sin(2 * np.pi * 180 * k * t) for k in range(1, 6))
    return torch.from_numpy((tone + 0.03 * rng.standard_normal(t.size))[None].astype(np.float32))



def count_params(model: DFN4) -> dict[str, int]:
    """Total parameters and those of each top-level block."""
    per_block = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    return {"total": sum(p.numel() for p in model.parameters()), **per_block}


def _scan_macs_per_hop(model: DFN4) -> int:
    """Elementwise selective-scan MACs per hop (the C.h readout is a matmul and is counted)."""
    from dfn4core.model.mamba import Mamba

    return sum(SCAN_MACS_PER_ELEMENT * m.d_inner * m.d_state for m in model.modules() if isinstance(m, Mamba))


def _df_macs_per_hop(model: DFN4) -> int:
    """Complex taps times coefficients of every DF order, plus the per-order weighting."""
    cfg = model.cfg
    return COMPLEX_MAC * sum(cfg.df_orders) * cfg.dsp.nb_df + 2 * len(cfg.df_orders) * cfg.dsp.nb_df


@torch.no_grad()
def count_macs(model: DFN4) -> dict[str, float]:
    """MACs per second of audio: FlopCounterMode over model(wave) of 1 s plus the analytic terms.

    Returns:
        network (the headline: without the STFT), its parts (network_counted,
        scan_elementwise_analytic, deep_filter_analytic), per-block counted MACs, and the STFT +
        ISTFT as FFTs (torch path) and as the factored DFT matmuls (ONNX path), all analytic.
    """
    dsp = model.cfg.dsp
    wave = make_audio(1.0, dsp.sr)
    hops = wave.shape[1] // dsp.hop_size
    with FlopCounterMode(display=False, depth=None) as counter:
        model(wave)
    counted = counter.get_total_flops() / 2
    per_module = counter.get_flop_counts()
    top = type(model).__name__
    blocks = {f"block.{b}": sum(per_module.get(f"{top}.{b}", {}).values()) / 2 for b in BLOCKS}
    n = dsp.fft_size
    scan, deep_filter = _scan_macs_per_hop(model) * hops, _df_macs_per_hop(model) * hops
    network = counted + scan + deep_filter
    dft = FactoredRealDft(n).macs() * hops  # the two-stage real DFT of the ONNX graph, both ways
    return {
        "network": network,
        "network_counted": counted,
        "scan_elementwise_analytic": scan,
        "deep_filter_analytic": deep_filter,
        "fft_analytic": 2 * 2 * (n / 2) * math.log2(n) * hops,
        "dft_analytic": dft,
        "total_with_dft": network + dft,
        **blocks,
    }


def _quantiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    ms = sorted(t * 1e3 for t in seconds)
    if len(ms) == 1:
        return {"median_ms": ms[0], "p90_ms": ms[0], "p99_ms": ms[0], "max_ms": ms[0]}
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return {"median_ms": statistics.median(ms), "p90_ms": cuts[89], "p99_ms": cuts[98], "max_ms": ms[-1]}


@torch.no_grad()
def offline_rtf(model: DFN4, settings: BenchmarkSettings) -> dict[str, Any]:
    """model(wave) on settings.seconds of audio: warm-ups, then the median of the timed repeats."""
    wave = make_audio(settings.seconds, model.cfg.dsp.sr)
    wave = wave[:, : max(1, wave.shape[1] // model.hop_size) * model.hop_size]
    for _ in range(settings.warmup_runs):
        model(wave)
    runs = []
    for _ in range(settings.repeats):
        start = time.perf_counter()
        model(wave)
        runs.append(time.perf_counter() - start)
    seconds = wave.shape[1] / model.cfg.dsp.sr
    return {"seconds": seconds, "rtf": statistics.median(runs) / seconds, "runs_s": runs}


@torch.no_grad()
def step_latency(model: DFN4, settings: BenchmarkSettings) -> dict[str, float]:
    """Wall time of model.step per hop over one stream: median, p90, p99 and max in ms."""
    dsp = model.cfg.dsp
    total = settings.warmup_hops + settings.hops
    frames = make_audio(total * dsp.hop_size / dsp.sr, dsp.sr)[:, : total * dsp.hop_size].reshape(1, total, -1)
    state, times = model.init_state(1), []
    for i in range(total):
        frame = frames[:, i].contiguous()
        start = time.perf_counter()
        _, state = model.step(frame, state)
        if i >= settings.warmup_hops:
            times.append(time.perf_counter() - start)
    return {"hops": settings.hops, "hop_ms": 1e3 * dsp.hop_size / dsp.sr, **_quantiles_ms(times)}


def _proc_status_kib(key: str) -> int | None:
    status = Path("/proc/self/status")
    if not status.exists():
        return None
    return next((int(line.split()[1]) for line in status.read_text().splitlines() if line.startswith(key + ":")), None)


def _reset_peak_rss() -> bool:
    """Resets VmHWM to the current RSS (Linux >= 4.0); False where not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_memory(model: DFN4, settings: BenchmarkSettings) -> dict[str, Any]:
    """Peak resident set while `dfn4core.enhance` runs on settings.seconds of audio.

    In a fresh spawned process (a model of the same config, same thread count) or in this one,
    as settings.memory_process says. Uses VmHWM after resetting it (Linux); elsewhere ru_maxrss,
    the process's peak so far, so the growth can read 0 there.
    """
    if settings.memory_process == "same":
        return _peak_memory_here(model, settings.seconds)
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(_fresh_peak_memory, (model.cfg.to_dict(), settings.seconds, torch.get_num_threads()))


def _fresh_peak_memory(cfg: dict[str, Any], seconds: float, threads: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    return _peak_memory_here(build(ModelConfig.from_dict(cfg)), seconds)


@torch.no_grad()
def _peak_memory_here(model: DFN4, seconds: float) -> dict[str, Any]:
    from dfn4core.enhance import enhance

    audio = make_audio(seconds, model.cfg.dsp.sr).numpy()
    model(torch.from_numpy(audio[:, : model.hop_size]))  # one-off allocations belong to the baseline
    return {"seconds": seconds, **_peak_rss_growth(lambda: enhance(model, audio, model.cfg.dsp.sr))}


def _peak_rss_growth(work) -> dict[str, Any]:
    """Peak resident set while `work()` runs and its growth over the resident set before it."""
    before = _proc_status_kib("VmRSS")
    method = "VmHWM after clear_refs" if before is not None and _reset_peak_rss() else "ru_maxrss"
    if method == "ru_maxrss":
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    work()
    peak = _proc_status_kib("VmHWM") if method != "ru_maxrss" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"method": method, "peak_mib": peak / 1024, "growth_mib": max(peak - before, 0) / 1024}


def latency(cfg: ModelConfig) -> dict[str, float]:
    """Algorithmic latency (window plus lookahead) and the output delay of the hop stream, in samples and ms."""
    dsp = cfg.dsp
    return {"samples": dsp.latency_size, "ms": 1e3 * dsp.latency_size / dsp.sr,
            "stream_delay_samples": dsp.delay_size, "stream_delay_ms": 1e3 * dsp.delay_size / dsp.sr}


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
    """Raises ConfigError for an unknown backend, or "onnx" while dfn4core.export.runtime is missing."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend == "onnx" and (importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None):
        raise ConfigError("backend 'onnx' needs the onnx and onnxruntime packages: pip install 'dfn4[export]'")


def benchmark_model(
    name: str, model: DFN4, threads: int, settings: BenchmarkSettings, backend: str = "torch"
) -> dict[str, Any]:
    """Every figure of one model on one backend at one thread count.

    Args:
        name: a label for the result (variant name or checkpoint path).
        model: the model to measure (put in eval mode).
        threads: torch intra-op threads, set for this measurement and restored afterwards.
        settings: lengths, repetitions and warm-ups.
        backend: "torch" (eager, CPU, no grad) or "onnx" (the exported streaming graph in
            onnxruntime, one call per hop, `threads` intra-op threads).
    Returns:
        {name, backend, threads, params, macs_per_s, offline, streaming, memory, latency, config}.
    """
    check_backend(backend)
    model = model.eval()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        logger.info("benchmark %s (%s, %d threads)", name, backend, threads)
        if backend == "onnx":
            from dfn4core.export.bench import onnx_figures

            timed = onnx_figures(model, settings, threads)
        else:
            timed = {"offline": offline_rtf(model, settings), "streaming": step_latency(model, settings),
                     "memory": peak_memory(model, settings)}  # fmt: skip
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
) -> dict[str, Any]:
    """Measure each model on each backend at each thread count.

    Args:
        models: label -> model (see `variant_config` and `build`, or `load_model`).
        threads: intra-op thread counts, each set explicitly.
        backends: "torch" and/or "onnx" (the exported streaming graph in onnxruntime).
        settings: lengths, repetitions, warm-ups.
        on_progress: called with (done, total) after each measurement.
    Returns:
        {"machine": machine_info(), "settings": ..., "results": [benchmark_model(...), ...]}.
    Raises:
        ConfigError: no models, a thread count < 1, or an unavailable backend.
    """
    settings = settings or BenchmarkSettings()
    if not models or not threads or min(threads) < 1:
        raise ConfigError("benchmark: need at least one model and thread counts >= 1")
    for backend in backends:
        check_backend(backend)
    jobs = [(n, b, t) for n in models for b in backends for t in threads]
    results = []
    for i, (name, backend, n_threads) in enumerate(jobs):
        results.append(benchmark_model(name, models[name], n_threads, settings, backend))
        if on_progress is not None:
            on_progress(i + 1, len(jobs))
    return {"machine": machine_info(), "settings": dataclasses.asdict(settings), "results": results}


def plot_benchmark(report: dict[str, Any], path: str | Path) -> Path:
    """A PNG with two bar charts: offline RTF and median per-hop step time (p99 as error bar) per
    model, backend and thread count.

    Raises:
        ConfigError: matplotlib (the `plot` extra) is not installed.
    """
    plt = pyplot()
    results = report["results"]
    labels = [f"{r['name']}\n{r['backend']}, {r['threads']}t" for r in results]
    x = np.arange(len(results))
    fig, (ax_rtf, ax_hop) = plt.subplots(1, 2, figsize=(max(6, 1.6 * len(results)), 4))
    ax_rtf.bar(x, [r["offline"]["rtf"] for r in results])
    ax_rtf.set(title="offline real-time factor", ylabel="RTF (lower is faster)")
    median = [r["streaming"]["median_ms"] for r in results]
    p99 = [r["streaming"]["p99_ms"] - m for r, m in zip(results, median)]
    ax_hop.bar(x, median, yerr=[[0] * len(x), p99], capsize=4)
    ax_hop.set(title="per 10 ms hop (median, p99)", ylabel="ms")
    for ax in (ax_rtf, ax_hop):
        ax.set_xticks(x, labels, fontsize=8)
    machine = report["machine"]
    fig.suptitle(f"{machine['cpu']}, torch {machine['torch']}, {machine['date_utc']}", fontsize=9)
    return save_figure(fig, path, dpi=120)

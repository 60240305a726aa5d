"""Timers of a DFN4 on this machine: offline real-time factor, streaming time per hop and peak memory.

`BenchmarkSettings` says how long and how often; `build` and `variant_config` give the seeded
models that `dfn4 benchmark` measures when no checkpoint is named.
"""

from __future__ import annotations

import dataclasses
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

from dfn4core.config import ModelConfig
from dfn4core.streaming import enhance
from dfn4core.errors import ConfigError
from dfn4core.model.dfnet4 import DFN4
from dfn4core.synth import noisy_speech

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
        block: streaming hops the model runs before a reference runtime runs the same hops
            (`time_steps`): 1 is hop by hop, each hop starting with caches the other runtime has
            filled; a few hundred times each runtime in its own warm loop.
    """

    seconds: float = 10.0
    hops: int = 300
    warmup_hops: int = 50
    repeats: int = 5
    warmup_runs: int = 1
    memory_process: str = "fresh"
    block: int = 1

    def __post_init__(self) -> None:
        if self.memory_process not in ("fresh", "same"):
            raise ConfigError(f"memory_process must be 'fresh' or 'same', got {self.memory_process!r}")
        if self.seconds <= 0 or min(self.hops, self.repeats, self.block) < 1 or min(self.warmup_hops, self.warmup_runs) < 0:
            raise ConfigError("benchmark: need seconds > 0, hops, repeats and block >= 1, warm-ups >= 0")


def variant_config(name: str) -> ModelConfig:
    """A variant of `ModelConfig.VARIANTS`, or one with '-gru' (temporal="gru", the ablation at equal width)."""
    base, gru = (name[:-4], True) if name.endswith("-gru") else (name, False)
    if base not in ModelConfig.VARIANTS:
        raise ConfigError(f"unknown variant {name!r}: choose {', '.join(ModelConfig.VARIANTS)} (optionally with -gru)")
    cfg = ModelConfig.variant(base)
    return dataclasses.replace(cfg, temporal="gru") if gru else cfg


def build(cfg: ModelConfig) -> DFN4:
    """A DFN4 with seeded random weights (the cost of a pass does not depend on the weights)."""
    torch.manual_seed(SEED)
    return DFN4(cfg).eval()


def make_audio(seconds: float, sr: int, seed: int = SEED) -> Tensor:
    """(1, N) float32: `dfn4core.synth.noisy_speech` as a batch of one."""
    return torch.from_numpy(noisy_speech(seconds, sr, seed))[None]


def quantiles_ms(seconds: Sequence[float]) -> dict[str, float]:
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
def step_latency(
    model: DFN4, settings: BenchmarkSettings, reference: Callable[[np.ndarray], Any] | None = None
) -> dict[str, Any]:
    """Wall time of model.step per hop over one stream: median, p90, p99 and max in ms (see `time_steps`)."""
    dsp = model.cfg.dsp
    total = settings.warmup_hops + settings.hops
    frames = make_audio(total * dsp.hop_size / dsp.sr, dsp.sr)[:, : total * dsp.hop_size].reshape(1, total, -1)
    state = model.init_state(1)

    def step(i: int) -> None:
        nonlocal state
        _, state = model.step(frames[:, i].contiguous(), state)

    return time_steps(step, frames[0].numpy()[:, None], dsp.sr, settings, reference)


def time_steps(
    step: Callable[[int], Any], frames: np.ndarray, sr: int, settings: BenchmarkSettings,
    reference: Callable[[np.ndarray], Any] | None = None,
) -> dict[str, Any]:
    """Times `step(i)` for each hop i of `frames` (warmup_hops + hops, (N, 1, hop); the first
    warmup_hops untimed): median, p90, p99, max ms.

    With `reference` (a stream's `step(hop)`, e.g. DeepFilterNet3's runtime), the two take turns in
    the same loop on the same audio, `settings.block` hops at a time (1: one hop of the reference
    after each of the model's), and the reference's times come back under "reference": both share
    whatever the machine is doing, so their ratio holds while its speed drifts.
    """  # fmt: skip
    times, reference_times = [], []
    total = settings.warmup_hops + settings.hops
    for first in range(0, total, settings.block):
        turn = range(first, min(first + settings.block, total))
        for i in turn:
            start = time.perf_counter()
            step(i)
            if i >= settings.warmup_hops:
                times.append(time.perf_counter() - start)
        if reference is None:
            continue
        for i in turn:
            start = time.perf_counter()
            reference(frames[i])
            if i >= settings.warmup_hops:
                reference_times.append(time.perf_counter() - start)
    result: dict[str, Any] = {"hops": settings.hops, "hop_ms": 1e3 * frames.shape[-1] / sr, **quantiles_ms(times)}
    if reference is not None:
        result["reference"] = {**quantiles_ms(reference_times), "block": settings.block}
    return result


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
    audio = make_audio(seconds, model.cfg.dsp.sr).numpy()
    model(torch.from_numpy(audio[:, : model.hop_size]))  # one-off allocations belong to the baseline
    return {"seconds": seconds, **peak_rss_growth(lambda: enhance(model, audio, model.cfg.dsp.sr))}


def peak_rss_growth(work: Callable[[], Any]) -> dict[str, Any]:
    """Peak resident set while `work()` runs and its growth over the resident set before it."""
    before = _proc_status_kib("VmRSS")
    method = "VmHWM after clear_refs" if before is not None and _reset_peak_rss() else "ru_maxrss"
    if method == "ru_maxrss":
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    work()
    peak = _proc_status_kib("VmHWM") if method != "ru_maxrss" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"method": method, "peak_mib": peak / 1024, "growth_mib": max(peak - before, 0) / 1024}

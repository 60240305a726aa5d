"""Benchmark DFN4 variants: parameters, MACs per second of audio, offline RTF, per-hop latency, peak memory.

Usage (from the repository root): python benchmarks/model.py --variants full,lite --threads 1 --json OUT [--compare-gru]
All timings are eager torch on CPU under torch.no_grad(); see docs/performance.md for measured figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from queue import Empty

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.scan import tune_malloc  # noqa: E402
from dfn4core import DFN4, ModelConfig, enhance  # noqa: E402
from dfn4core.model.mamba import Mamba  # noqa: E402

VARIANTS = {"full": ModelConfig.full, "lite": ModelConfig.lite}
BLOCKS = ("stft", "features", "encoder", "erb_decoder", "df_decoder", "order_predictor", "mrdf")
SCAN_MACS_PER_ELEMENT = 3  # dt*A, (dt*u)*B and the decay*h + input addcmul; exp() not counted
COMPLEX_MAC = 4  # real MACs of one complex multiply-accumulate
RTF_REPEATS = 5
RTF_WARMUP = 1
STEP_WARMUP = 50
BREAKDOWN_ROWS = ("total", "features", "encoder", "encoder.temporal", "erb_decoder", "df_decoder", "order_predictor",
                  "mrdf", "stft+glue")
SEED = 0


def make_config(name: str) -> ModelConfig:
    """'full', 'lite', or 'full-gru' (full with GRU temporal blocks, the ablation)."""
    if name.endswith("-gru"):
        return dataclasses.replace(VARIANTS[name[: -len("-gru")]](), temporal="gru")
    return VARIANTS[name]()


def make_audio(seconds: float, sr: int, seed: int = SEED) -> np.ndarray:
    """(1, N) float32: a harmonic tone plus white noise, the tests' signal (cost does not depend on it)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    tone = sum(0.1 / k * np.sin(2 * np.pi * 180 * k * t) for k in range(1, 6))
    return (tone + 0.03 * rng.standard_normal(t.size))[None].astype(np.float32)


def build(cfg: ModelConfig) -> DFN4:
    torch.manual_seed(SEED)
    return DFN4(cfg).eval()


def count_params(model: DFN4) -> dict[str, int]:
    """Total parameters and those of each top-level block."""
    per_block = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    return {"total": sum(p.numel() for p in model.parameters()), **per_block}


def dft_macs_per_hop(model: DFN4) -> int:
    """Analysis frames @ fwd (N x 2F) plus synthesis spec @ inv (2F x N), once per hop each."""
    return 2 * model.stft.fft_size * 2 * model.stft.n_freqs


def fft_macs_per_hop(model: DFN4) -> int:
    """A real FFT and inverse of size N: about 2 * (N / 2) * log2(N) real multiply-adds each."""
    n = model.stft.fft_size
    return int(2 * 2 * (n / 2) * math.log2(n))


def scan_macs_per_hop(model: DFN4) -> tuple[int, int]:
    """(Mamba layers, elementwise scan MACs per hop) that FlopCounterMode cannot see.

    The readout C.h is a matmul, which FlopCounterMode counts, so it is not added here.
    """
    layers = [m for m in model.modules() if isinstance(m, Mamba)]
    return len(layers), sum(SCAN_MACS_PER_ELEMENT * m.d_inner * m.d_state for m in layers)


def df_macs_per_hop(model: DFN4) -> int:
    """Complex taps * coefficients of every DF order, plus the per-order weighting (elementwise ops)."""
    cfg = model.cfg
    return COMPLEX_MAC * sum(cfg.df_orders) * cfg.dsp.nb_df + 2 * len(cfg.df_orders) * cfg.dsp.nb_df


@torch.no_grad()
def count_macs(model: DFN4) -> dict[str, float]:
    """MACs per second of audio (flops / 2 from FlopCounterMode over model(wave) of 1 s, plus analytic terms)."""
    dsp = model.cfg.dsp
    wave = torch.from_numpy(make_audio(1.0, dsp.sr))
    hops = wave.shape[1] // dsp.hop_size
    with FlopCounterMode(display=False, depth=None) as counter:
        model(wave)
    counted = counter.get_total_flops() / 2
    per_module = counter.get_flop_counts()
    top = type(model).__name__
    blocks = {name: sum(per_module.get(f"{top}.{name}", {}).values()) / 2 for name in BLOCKS[1:]}
    # In torch the STFT is torch.fft, which FlopCounterMode does not count; the ONNX export runs
    # the same DFT as two real matmuls, whose cost is added analytically for that path.
    dft = dft_macs_per_hop(model) * hops
    n_mamba, scan = scan_macs_per_hop(model)
    deep_filter = df_macs_per_hop(model) * hops
    network = counted + scan * hops + deep_filter
    return {
        "counted_total": counted,
        "dft_analytic": dft,
        "fft_analytic": fft_macs_per_hop(model) * hops,
        "top_level_other": counted - sum(blocks.values()),  # ERB gain expansion (gains @ erb_expand)
        "network_counted": counted,
        "mamba_layers": n_mamba,
        "scan_elementwise_analytic": scan * hops,
        "deep_filter_analytic": deep_filter,
        "network": network,
        "total_with_dft": network + dft,
        **{f"block.{name}": macs for name, macs in blocks.items()},
    }


def _timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the calling thread) of one call.

    With one intra-op thread all of torch's work runs on the calling thread, so its CPU time is the
    cost without the time other processes took the core away (it still includes cache effects).
    """
    wall, cpu = time.perf_counter(), time.thread_time()
    fn()
    return time.perf_counter() - wall, time.thread_time() - cpu


def _summary_ms(seconds: list[float], prefix: str) -> dict[str, float]:
    ms = sorted(t * 1e3 for t in seconds)
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    quantiles = {"median": statistics.median(ms), "p90": cuts[89], "p99": cuts[98], "max": ms[-1]}
    return {f"{prefix}{name}_ms": value for name, value in quantiles.items()}


def _hop_frames(model: DFN4, hops: int) -> list[torch.Tensor]:
    """STEP_WARMUP + hops consecutive hops (1, hop) of the benchmark signal."""
    dsp = model.cfg.dsp
    wave = torch.from_numpy(make_audio((STEP_WARMUP + hops) * dsp.hop_size / dsp.sr, dsp.sr))
    return [frame.contiguous() for frame in wave.reshape(1, -1, dsp.hop_size).unbind(1)]


@torch.no_grad()
def offline_rtf(model: DFN4, seconds: float) -> dict[str, object]:
    """model(wave) on `seconds` of audio: warm-up, then the median of RTF_REPEATS timed runs."""
    wave = torch.from_numpy(make_audio(seconds, model.cfg.dsp.sr))
    for _ in range(RTF_WARMUP):
        model(wave)
    wall, cpu = zip(*(_timed(lambda: model(wave)) for _ in range(RTF_REPEATS)))
    return {
        "seconds": seconds,
        "rtf": statistics.median(wall) / seconds,
        "rtf_thread_cpu": statistics.median(cpu) / seconds,
        "runs_wall_s": list(wall),
        "runs_thread_cpu_s": list(cpu),
    }


@torch.no_grad()
def step_latency(model: DFN4, hops: int) -> dict[str, float]:
    """Per-hop model.step time over `hops` consecutive hops of one stream, after STEP_WARMUP hops."""
    state = model.init_state(1)
    wall, cpu = [], []
    for i, frame in enumerate(_hop_frames(model, hops)):
        start_wall, start_cpu = time.perf_counter(), time.thread_time()
        _, state = model.step(frame, state)
        if i >= STEP_WARMUP:
            wall.append(time.perf_counter() - start_wall)
            cpu.append(time.thread_time() - start_cpu)
    hop_ms = 1e3 * model.cfg.dsp.hop_size / model.cfg.dsp.sr
    return {"hops": hops, "hop_ms": hop_ms, **_summary_ms(wall, ""), **_summary_ms(cpu, "thread_cpu_")}


@torch.no_grad()
def step_breakdown(model: DFN4, hops: int) -> dict[str, float]:
    """Median thread-CPU ms per hop in each block during model.step, from forward hooks (a separate pass).

    "stft+glue" is the rest of the hop: STFT/ISTFT matmuls, the ERB mask, concatenations, state dicts.
    """
    names = [n for n, _ in model.named_children() if n != "stft"]
    names += [f"encoder.{n}" for n, _ in model.encoder.named_children()]
    names += ["erb_decoder.temporal", "df_decoder.temporal"]
    modules = dict(model.named_modules())
    spent: dict[str, list[float]] = {n: [] for n in names}
    starts: dict[str, float] = {}
    handles = []
    for n in names:
        handles.append(modules[n].register_forward_pre_hook(lambda *_, n=n: starts.__setitem__(n, time.thread_time())))
        handles.append(modules[n].register_forward_hook(lambda *_, n=n: spent[n].append(time.thread_time() - starts[n])))
    state, totals = model.init_state(1), []
    try:
        for frame in _hop_frames(model, hops):
            start = time.thread_time()
            _, state = model.step(frame, state)
            totals.append(time.thread_time() - start)
    finally:
        for handle in handles:
            handle.remove()
    result = {n: 1e3 * statistics.median(t[STEP_WARMUP:]) for n, t in spent.items()}
    result["total"] = 1e3 * statistics.median(totals[STEP_WARMUP:])
    top = [n for n in names if "." not in n]
    result["stft+glue"] = result["total"] - sum(result[n] for n in top)
    return result


def _proc_status_kib(key: str) -> int | None:
    """A VmRSS/VmHWM line of /proc/self/status in KiB, or None where there is no procfs."""
    status = Path("/proc/self/status")
    if not status.exists():
        return None
    return next((int(line.split()[1]) for line in status.read_text().splitlines() if line.startswith(key + ":")), None)


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0, writing 5 to clear_refs); False where not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _memory_child(cfg_dict: dict, seconds: float, threads: int, malloc: bool, queue) -> None:
    """Runs in a fresh process; reports how far the resident set rose above its level before enhance()."""
    torch.set_num_threads(threads)
    if malloc:
        tune_malloc()
    model = build(ModelConfig.from_dict(cfg_dict))
    audio = make_audio(seconds, model.cfg.dsp.sr)
    with torch.no_grad():  # one hop first, so one-off allocations (thread pool, kernels) are in the baseline
        model(torch.from_numpy(audio[:, : model.cfg.dsp.hop_size]))
    before = _proc_status_kib("VmRSS")
    method = "VmHWM after clear_refs" if before is not None and _reset_peak_rss() else "ru_maxrss"
    if method == "ru_maxrss":  # fallback: the peak so far, so growth can read 0 when start-up peaked higher
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    elapsed, cpu = _timed(lambda: enhance(model, audio, model.cfg.dsp.sr))
    peak = _proc_status_kib("VmHWM") if method != "ru_maxrss" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put(
        {
            "seconds": seconds,
            "method": method,
            "baseline_mib": before / 1024,
            "peak_mib": peak / 1024,
            "growth_mib": (peak - before) / 1024,
            "audio_mib": audio.nbytes / 2**20,
            "enhance_s": elapsed,
            "enhance_rtf": elapsed / seconds,
            "enhance_rtf_thread_cpu": cpu / seconds,
        }
    )


def peak_memory(cfg: ModelConfig, seconds: float, threads: int, malloc: bool) -> dict[str, object]:
    """Peak resident-set growth of dfn4core.enhance on `seconds` of audio, measured in a spawned process."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_memory_child, args=(cfg.to_dict(), seconds, threads, malloc, queue))
    proc.start()
    while True:
        try:
            result = queue.get(timeout=1.0)
            break
        except Empty:
            if not proc.is_alive():
                raise RuntimeError(f"the memory run exited with code {proc.exitcode}") from None
    proc.join()
    return result


def machine_info(threads: int) -> dict[str, object]:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        lines = cpuinfo.read_text().splitlines()
        models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
        cpu = models[0] if models else cpu
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def bench_variant(name: str, args: argparse.Namespace) -> dict[str, object]:
    cfg = make_config(name)
    model = build(cfg)
    print(f"[{name}] parameters and MACs ...", flush=True)
    result: dict[str, object] = {"variant": name, "config": cfg.to_dict(), "loadavg_before": os.getloadavg()}
    result["params"], result["macs_per_s"] = count_params(model), count_macs(model)
    print(f"[{name}] offline RTF on {args.seconds:g} s ...", flush=True)
    result["offline"] = offline_rtf(model, args.seconds)
    print(f"[{name}] streaming, {args.hops} hops ...", flush=True)
    result["streaming"] = step_latency(model, args.hops)
    result["step_breakdown_ms"] = step_breakdown(model, args.hops)
    result["loadavg_after"] = os.getloadavg()
    result["memory"] = []
    for seconds in args.memory_seconds:
        print(f"[{name}] enhance() memory on {seconds:g} s ...", flush=True)
        result["memory"].append(peak_memory(cfg, seconds, args.threads, args.malloc_tune))
    return result


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))


Row = tuple[str, Callable[[dict], str]]


def _table_rows(results: list[dict]) -> list[Row]:
    """(label, formatter of one variant's result) for every line of the printed table."""
    macs = lambda key: lambda r: f"{r['macs_per_s'][key] / 1e9:.4f}"  # noqa: E731
    rows: list[Row] = [
        ("parameters (M)", lambda r: f"{r['params']['total'] / 1e6:.3f}"),
        *[(f"  {b} (M)", lambda r, b=b: f"{r['params'][b] / 1e6:.3f}") for b in BLOCKS[2:-1]],
        ("MACs/s network, excl. STFT (G) [1]", macs("network")),
        ("  counted by FlopCounterMode (G)", macs("network_counted")),
        ("  + selective-scan elementwise, analytic (G)", macs("scan_elementwise_analytic")),
        ("  + deep filter elementwise, analytic (G)", macs("deep_filter_analytic")),
        *[(f"  counted in {b} (G)", macs(f"block.{b}")) for b in BLOCKS[1:-1]],
        ("  counted at top level: ERB gain expansion (G)", macs("top_level_other")),
        ("MACs/s STFT+ISTFT as FFTs, torch path (G) [2]", macs("fft_analytic")),
        ("MACs/s STFT+ISTFT as DFT matmuls, ONNX path (G) [2]", macs("dft_analytic")),
        ("MACs/s total, ONNX path incl. DFT matmuls (G)", macs("total_with_dft")),
        ("offline RTF, model(wave), median of 5, wall", lambda r: f"{r['offline']['rtf']:.4f}"),
        ("  same, thread CPU time [5]", lambda r: f"{r['offline']['rtf_thread_cpu']:.4f}"),
        ("step latency median (ms per 10 ms hop), wall", lambda r: f"{r['streaming']['median_ms']:.3f}"),
        ("step latency p90 (ms), wall", lambda r: f"{r['streaming']['p90_ms']:.3f}"),
        ("step latency p99 (ms), wall", lambda r: f"{r['streaming']['p99_ms']:.3f}"),
        ("step median / p90 / p99 (ms), thread CPU [5]",
         lambda r: "/".join(f"{r['streaming'][f'thread_cpu_{q}_ms']:.2f}" for q in ("median", "p90", "p99"))),
        *[(f"  step CPU median in {b} (ms) [4]", lambda r, b=b: f"{r['step_breakdown_ms'][b]:.3f}") for b in BREAKDOWN_ROWS],
        ("load average 1 min, before / after", lambda r: f"{r['loadavg_before'][0]:.1f}/{r['loadavg_after'][0]:.1f}"),
    ]
    for i, seconds in enumerate(m["seconds"] for m in results[0]["memory"]):
        rows += [
            (f"enhance() {seconds:g} s: peak RSS growth (MiB) [3]", lambda r, i=i: f"{r['memory'][i]['growth_mib']:.1f}"),
            (f"enhance() {seconds:g} s: peak RSS (MiB)", lambda r, i=i: f"{r['memory'][i]['peak_mib']:.1f}"),
            (f"enhance() {seconds:g} s: RTF, wall / thread CPU",
             lambda r, i=i: f"{r['memory'][i]['enhance_rtf']:.4f}/{r['memory'][i]['enhance_rtf_thread_cpu']:.4f}"),
        ]
    return rows


FOOTNOTES = """
[1] FlopCounterMode over model(wave) of 1 s (flops / 2; mm, bmm, addmm, convolution; torch.fft is not counted), plus analytic
    elementwise MACs: selective scan 3 * d_inner * d_state per Mamba layer per frame (dt*A, dt*u*B, decay*h + input;
    the C.h readout is a matmul and is counted), deep filter 4 per complex tap.
[2] analytic. torch runs the STFT with torch.fft (about 2 * (N/2) * log2 N real MACs per transform); the ONNX
    export runs the same DFT as 2 matmuls of fft_size x 2 * n_freqs per hop (frames @ fwd, spec @ inv).
[3] a fresh process: peak resident set (VmHWM, reset before the call) during dfn4core.enhance on the clip, minus the
    resident set just before it (model built, input clip allocated, one warm-up hop).
[4] a second streaming pass, thread CPU time per block from forward hooks; stft+glue = hop total minus the blocks.
[5] CPU time of the calling thread (time.thread_time): with --threads 1 (only), the cost without preemption."""


def print_tables(results: list[dict], machine: dict) -> None:
    names = [r["variant"] for r in results]
    widths = [50] + [max(16, len(n)) for n in names]
    print(f"\n{machine['cpu']}, {machine['cores']} cores, {machine['threads']} thread(s), "
          f"torch {machine['torch']}, {machine['date_utc']}")
    print(_row(["", *names], widths))
    for label, fmt in _table_rows(results):
        print(_row([label, *[fmt(r) for r in results]], widths))
    print(FOOTNOTES)
    base = results[0]
    for r in results[1:]:
        ratio = lambda *keys: _get(r, keys) / _get(base, keys)  # noqa: E731
        print(f"ratios {r['variant']} / {base['variant']} (same run): params {ratio('params', 'total'):.3f}, "
              f"network MACs {ratio('macs_per_s', 'network'):.3f}, offline RTF {ratio('offline', 'rtf'):.3f} "
              f"(CPU {ratio('offline', 'rtf_thread_cpu'):.3f}), step median {ratio('streaming', 'median_ms'):.3f} "
              f"(CPU {ratio('streaming', 'thread_cpu_median_ms'):.3f})")


def _get(result: dict, keys: tuple[str, ...]) -> float:
    for key in keys:
        result = result[key]
    return result


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="full,lite", help="comma-separated: full, lite")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0, help="audio length of the offline RTF run")
    parser.add_argument("--hops", type=int, default=300, help="timed streaming hops")
    parser.add_argument("--memory-seconds", type=_floats, default=[60.0], help="clip lengths of the enhance() memory runs, "
                        "comma-separated ('' skips)")
    parser.add_argument("--compare-gru", action="store_true", help="also run full with temporal='gru'")
    parser.add_argument("--malloc-tune", action=argparse.BooleanOptionalAction, default=False,
                        help="raise glibc's mmap/trim thresholds (see benchmarks/scan.py)")
    parser.add_argument("--json", type=Path, default=None, help="write all results here")
    args = parser.parse_args()

    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {sorted(VARIANTS)}")
    if args.compare_gru:
        names.append("full-gru")
    torch.set_num_threads(args.threads)
    if args.malloc_tune:
        tune_malloc()
    machine = machine_info(args.threads)
    results = [bench_variant(name, args) for name in names]
    print_tables(results, machine)
    if args.json:
        command = " ".join([Path(sys.executable).name, *sys.argv])
        args_dict = vars(args) | {"json": str(args.json)}
        payload = {"machine": machine, "command": command, "args": args_dict, "results": results}
        args.json.write_text(json.dumps(payload, indent=2))
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()

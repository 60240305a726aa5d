"""Time the Mamba scan paths against an nn.GRU of the same width, offline and per streaming step.

Usage (from the repository root): python -m benchmarks.scan --d-model 256 --frames 1000 --threads 1 [--malloc-tune]
Training only (forward + backward of one Mamba layer, paths interleaved so load from other jobs hits all alike):
    python -m benchmarks.scan --train-only --d-model 192 --frames 300 --batch-size 8 --threads 2
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import time
from collections.abc import Callable

import torch

from dfn4core.model.mamba import Mamba

GLIBC_M_TRIM_THRESHOLD, GLIBC_M_MMAP_THRESHOLD = -1, -3
MALLOC_THRESHOLD_BYTES = 1 << 30


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    """Median wall time of `fn` in milliseconds after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def interleaved_ms(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, tuple[float, float, float]]:
    """(min, median) wall and median process CPU milliseconds of each function, run in turns."""
    for fn in fns.values():
        fn()
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return {n: (min(wall[n]) * 1e3, statistics.median(wall[n]) * 1e3, statistics.median(cpu[n]) * 1e3) for n in fns}


def train_paths(mamba: Mamba, x: torch.Tensor, repeats: int) -> dict[str, tuple[float, float, float]]:
    """Forward + backward of one Mamba layer per scan path (reference = autograd loop, fused = SelectiveScan)."""

    def run(path: str) -> Callable[[], object]:
        def call() -> None:
            mamba.zero_grad()
            mamba(x.detach().requires_grad_(), scan=path)[0].square().mean().backward()

        return call

    return interleaved_ms({f"mamba {path}": run(path) for path in ("reference", "fused")}, repeats)


def tune_malloc() -> None:
    """Stop glibc from returning large blocks to the OS after every tensor (page faults on each alloc)."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(GLIBC_M_MMAP_THRESHOLD, MALLOC_THRESHOLD_BYTES)
    libc.mallopt(GLIBC_M_TRIM_THRESHOLD, MALLOC_THRESHOLD_BYTES)


def offline(mamba: Mamba, gru: torch.nn.GRU, x: torch.Tensor, repeats: int, train: bool) -> dict[str, float]:
    """Forward (and backward when `train`) times of each path over the whole sequence."""

    def run(model_fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], object]:
        def call() -> None:
            if train:
                model_fn(x.requires_grad_()).square().mean().backward()
            else:
                with torch.no_grad():
                    model_fn(x)

        return call

    return {
        "mamba reference": median_ms(run(lambda t: mamba(t, scan="reference")[0]), repeats),
        **({"mamba fused": median_ms(run(lambda t: mamba(t, scan="fused")[0]), repeats)} if train else {}),
        "mamba chunked": median_ms(run(lambda t: mamba(t, scan="chunked")[0]), repeats),
        "gru": median_ms(run(lambda t: gru(t)[0]), repeats),
    }


@torch.no_grad()
def streaming(mamba: Mamba, gru: torch.nn.GRU, d_model: int, steps: int) -> dict[str, float]:
    """Median latency of one streaming frame, in milliseconds."""
    frame = torch.randn(1, d_model)
    state, h = mamba.init_state(1), torch.zeros(1, 1, d_model)

    def mamba_step() -> None:
        mamba.step(frame, state)

    def gru_step() -> None:
        gru(frame.unsqueeze(1), h)

    return {"mamba step": median_ms(mamba_step, steps, 20), "gru step": median_ms(gru_step, steps, 20)}


def print_table(title: str, times: dict[str, float], baseline: str) -> None:
    print(f"\n{title}")
    print(f"{'path':<18}{'ms':>10}{'x ' + baseline:>16}")
    for name, ms in times.items():
        print(f"{name:<18}{ms:>10.3f}{ms / times[baseline]:>16.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=500, help="timed streaming steps")
    parser.add_argument("--malloc-tune", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--batch-size", type=int, default=1, help="batch of --train-only")
    parser.add_argument("--train-only", action="store_true", help="only reference vs fused, forward + backward")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.malloc_tune:
        tune_malloc()
    if args.train_only:
        x = torch.randn(args.batch_size, args.frames, args.d_model)
        times = train_paths(Mamba(args.d_model), x, args.repeats)
        print(f"torch {torch.__version__}, {args.threads} thread(s), d_model {args.d_model}, {args.frames} frames, "
              f"batch {args.batch_size}: training (forward + backward), ms")  # fmt: skip
        print(f"{'path':<18}{'min':>10}{'median':>10}{'cpu':>10}{'x reference':>14}")
        for name, (low, mid, cpu) in times.items():
            print(f"{name:<18}{low:>10.1f}{mid:>10.1f}{cpu:>10.1f}{mid / times['mamba reference'][1]:>14.2f}")
        return
    mamba = Mamba(args.d_model).eval()
    gru = torch.nn.GRU(args.d_model, args.d_model, batch_first=True).eval()
    x = torch.randn(1, args.frames, args.d_model)
    print(f"torch {torch.__version__}, {args.threads} thread(s), d_model {args.d_model}, {args.frames} frames, batch 1")
    print_table("inference (no grad)", offline(mamba, gru, x, args.repeats, train=False), "gru")
    print_table("training (forward + backward)", offline(mamba, gru, x, args.repeats, train=True), "gru")
    print_table("streaming (one frame)", streaming(mamba, gru, args.d_model, args.steps), "gru step")


if __name__ == "__main__":
    main()

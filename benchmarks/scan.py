"""Time the Mamba scan paths against an nn.GRU of the same width, offline and per streaming step.

Usage (from the repository root): python -m benchmarks.scan --d-model 256 --frames 1000 --threads 1 [--malloc-tune]
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
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.malloc_tune:
        tune_malloc()
    mamba = Mamba(args.d_model).eval()
    gru = torch.nn.GRU(args.d_model, args.d_model, batch_first=True).eval()
    x = torch.randn(1, args.frames, args.d_model)
    print(f"torch {torch.__version__}, {args.threads} thread(s), d_model {args.d_model}, {args.frames} frames, batch 1")
    print_table("inference (no grad)", offline(mamba, gru, x, args.repeats, train=False), "gru")
    print_table("training (forward + backward)", offline(mamba, gru, x, args.repeats, train=True), "gru")
    print_table("streaming (one frame)", streaming(mamba, gru, args.d_model, args.steps), "gru step")


if __name__ == "__main__":
    main()

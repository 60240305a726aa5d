"""`train()`: builds the model, data, losses and optimizers, runs the steps, validates, checkpoints.

A run directory holds the resolved configs (train.toml, data.toml), metrics.jsonl, checkpoints/
(last.pt and the newest numbered ones, each enough to resume exactly) and best.pt (model only).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dfn4core.data.config import DataConfig
from dfn4core.data.loader import build_dataset
from dfn4core.errors import CheckpointError, ConfigError, TrainingInterrupted
from dfn4core.losses import GeneratorLoss, MultiPeriodDiscriminator, aligned_pair, discriminator_loss
from dfn4core.model.checkpoint import load_model, save_model
from dfn4core.model.dfnet4 import DFN4
from dfn4core.train import checkpoint as ckpt_io
from dfn4core.train.config import TrainConfig
from dfn4core.train.batches import epoch_loader, steps_per_epoch
from dfn4core.train.distributed import (
    DistContext,
    all_ranks_true,
    barrier,
    destroy_process_group,
    init_process_group,
    wrap,
)
from dfn4core.train.loop import StepContext, gan_step, train_step, validate
from dfn4core.train.logbook import Logbook
from dfn4core.train.schedule import make_scheduler

logger = logging.getLogger(__name__)


@dataclass
class TrainProgress:
    """Reported to `on_progress` after every step."""

    step: int
    total: int
    terms: dict[str, float]
    lr: float
    steps_per_s: float
    skipped: int
    valid: dict[str, float] | None = None

    @property
    def eta_s(self) -> float:
        return (self.total - self.step) / self.steps_per_s if self.steps_per_s > 0 else math.inf


@dataclass
class TrainResult:
    """Where a run wrote its files, its final figures, and the trained model (this rank's copy)."""

    model: DFN4
    run_dir: Path
    step: int
    skipped_steps: int
    last_checkpoint: Path
    best_checkpoint: Path | None
    best_value: float | None
    valid: dict[str, float] | None = field(default=None)


def train(
    cfg: TrainConfig,
    data: DataConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    device: str | torch.device = "cpu",
    dist: DistContext | None = None,
    on_progress: Callable[[TrainProgress], None] | None = None,
    init_method: str = "env://",
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train a DFN4 as `cfg` says on `data`, writing into `run_dir`.

    Args:
        cfg: training settings (model variant, steps, optimizer, losses...).
        data: training and validation sources.
        run_dir: output folder; must hold no checkpoints unless `resume`.
        resume: continue exactly from run_dir/checkpoints/last.pt.
        device: where to train.
        dist: this process's place in a DDP run (None: single process).
        on_progress: called after every step (rank 0 only).
        init_method: rendezvous of a DDP run ("env://" under torchrun).
        should_stop: asked after every step (on every rank); True on any rank checkpoints the
            current step and stops the run (how the CLI handles Ctrl-C and SIGTERM).
    Returns:
        Where things were written and the final figures.
    Raises:
        TrainingInterrupted: should_stop said so; the run resumes from the checkpoint it names.
        CheckpointError: last.pt of a resumed run is unreadable (names the newest readable step_*.pt).
    """
    dist = dist or DistContext()
    run = _Run(cfg, data, Path(run_dir), torch.device(device), dist)
    init_process_group(dist, init_method)
    try:
        run.setup(resume)
        return run.loop(on_progress, should_stop or (lambda: False))
    finally:
        destroy_process_group(dist)


class _Run:
    """The objects of one training run and the loop over them."""

    def __init__(self, cfg: TrainConfig, data: DataConfig, run_dir: Path, device: torch.device, dist: DistContext):
        self.cfg, self.data, self.run_dir, self.device, self.dist = cfg, data, run_dir, device, dist
        self.ckpt_dir = run_dir / "checkpoints"
        self.step = self.skipped = 0
        self.best: float | None = None
        self.last_valid: dict[str, float] | None = None

    def setup(self, resume: bool) -> None:
        cfg, device = self.cfg, self.device
        last = self.ckpt_dir / "last.pt"
        if resume and not last.exists():
            raise ConfigError(f"{self.run_dir}: nothing to resume (no checkpoints/last.pt)")
        if not resume and last.exists():
            raise ConfigError(f"{self.run_dir} already holds a run: pass --resume or choose another --out")
        torch.manual_seed(cfg.seed)
        self.model = DFN4(cfg.model_config())
        if cfg.init and not resume:
            _load_init(self.model, cfg.init)
        self.model.freeze_norm = cfg.freeze_norm
        self.model = self.model.to(device).train()
        self.loss_fn = GeneratorLoss(cfg.loss, self.model.cfg.dsp).to(device)
        self.distiller = _distiller(cfg, self.model, device)
        params = [*self.model.parameters(), *(self.distiller.parameters() if self.distiller is not None else ())]
        o = cfg.optim
        self.opt = torch.optim.AdamW(params, o.lr, betas=o.betas, weight_decay=o.weight_decay)
        self.sched = make_scheduler(self.opt, o.warmup_steps, cfg.steps, o.lr_min / o.lr)
        self.disc = self.disc_opt = self.disc_sched = None
        if self._gan_enabled():
            self.disc = MultiPeriodDiscriminator(cfg.loss).to(device).train()
            self.disc_opt = torch.optim.AdamW(self.disc.parameters(), o.disc_lr, betas=o.betas, weight_decay=o.weight_decay)
            # The discriminator's schedule counts its own steps, which start at gan_start_step.
            self.disc_sched = make_scheduler(self.disc_opt, o.warmup_steps, cfg.steps - cfg.gan_start_step, o.lr_min / o.lr)
        self.ctx = StepContext(device, self.dist, o.grad_clip, *_precision(cfg.amp, device))
        if resume:
            self._restore(_read_last(last, self.ckpt_dir))
        self.ddp_model = wrap(self.model, self.dist, device)
        self.ddp_disc = wrap(self.disc, self.dist, device) if self.disc is not None else None
        self.extra_loss = self.distiller
        if self.distiller is not None and any(True for _ in self.distiller.parameters()):
            self.extra_loss = wrap(self.distiller, self.dist, device)  # the projection trains on every rank
        self.train_set = build_dataset(self.data, "train")
        self.valid_set = build_dataset(self.data, "valid") if cfg.valid_every else None
        self.per_epoch = steps_per_epoch(len(self.train_set), cfg.batch_size, self.dist.world_size)
        self.logbook = Logbook(self.run_dir, enabled=self.dist.is_main)
        if self.dist.is_main:
            self.logbook.write_configs(cfg, self.data)
            self.logbook.truncate_after(self.step)

    def loop(self, on_progress: Callable[[TrainProgress], None] | None, should_stop: Callable[[], bool]) -> TrainResult:
        cfg, started, done_here = self.cfg, time.perf_counter(), 0
        while self.step < cfg.steps:
            epoch, first = divmod(self.step, self.per_epoch)
            for batch in epoch_loader(self.train_set, cfg, self.dist, epoch, first):
                terms = self._one_step(batch)
                self.step += 1
                done_here += 1
                valid = self._maybe_validate()
                if self.step % cfg.ckpt_every == 0 or self.step == cfg.steps:
                    self._checkpoint()
                if self.dist.is_main and on_progress is not None:
                    rate = done_here / (time.perf_counter() - started)
                    on_progress(TrainProgress(self.step, cfg.steps, terms, self.sched.get_last_lr()[0], rate, self.skipped, valid))
                if self.step >= cfg.steps:
                    break
                if not all_ranks_true(not should_stop(), self.dist, self.device):
                    self._stop()
        self.logbook.close()
        best = self.run_dir / "best.pt"
        return TrainResult(self.model, self.run_dir, self.step, self.skipped, self.ckpt_dir / "last.pt",
                           best if best.exists() else None, self.best, self.last_valid)  # fmt: skip

    def _stop(self) -> None:
        """Checkpoints the current step (unless it just was) and raises TrainingInterrupted."""
        if self.step % self.cfg.ckpt_every:
            self._checkpoint()
        self.logbook.close()
        logger.info("stopped at step %d", self.step)
        raise TrainingInterrupted(self.step, self.ckpt_dir / "last.pt")

    def _one_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        gan = self.disc is not None and self.step >= self.cfg.gan_start_step
        if self.disc is not None:
            self.disc.requires_grad_(False)  # the generator step needs no discriminator gradients
        result = train_step(self.ddp_model, self.loss_fn, batch, self.opt, self.ctx, self.disc if gan else None, self.extra_loss)
        terms: dict[str, torch.Tensor] = {}
        if result is None:
            self.skipped += 1
            logger.warning("step %d skipped: loss or gradient not finite", self.step)
        else:
            terms, fake = result
            if gan:
                self.disc.requires_grad_(True)
                fake, real = aligned_pair(fake, batch["clean"].to(self.device), self.model.cfg.dsp)
                disc_terms = gan_step(self.ddp_disc, discriminator_loss, real, fake, self.disc_opt, self.ctx)
                if disc_terms is None:
                    self.skipped += 1
                else:
                    terms.update(disc_terms)
                    self.disc_sched.step()
        self.sched.step()
        values = {k: float(v) for k, v in terms.items()}
        self.logbook.add(self.step + 1, values, lr=self.sched.get_last_lr()[0], every=self.cfg.log_every)
        return values

    def _maybe_validate(self) -> dict[str, float] | None:
        cfg = self.cfg
        if not cfg.valid_every or (self.step % cfg.valid_every and self.step != cfg.steps):
            return None
        valid = None
        if self.dist.is_main:
            valid = validate(self.model, self.loss_fn, _valid_batches(self.valid_set, cfg), self.device)
            self.last_valid = valid
            self.logbook.record({"step": self.step, "kind": "valid", **valid})
            value = valid.get(cfg.best_metric, math.nan)
            higher_is_better = cfg.best_metric != "valid_loss"
            if math.isfinite(value) and (self.best is None or (value > self.best if higher_is_better else value < self.best)):
                self.best = value
                save_model(self.model, self.run_dir / "best.pt")
        barrier(self.dist)
        return valid

    def _checkpoint(self) -> None:
        if self.dist.is_main:
            state = self._train_state()
            ckpt_io.save_training_checkpoint(self.ckpt_dir / "last.pt", self.model, state)
            if self.cfg.keep_checkpoints:
                ckpt_io.save_training_checkpoint(self.ckpt_dir / f"step_{self.step:08d}.pt", self.model, state)
                for old in sorted(self.ckpt_dir.glob("step_*.pt"))[: -self.cfg.keep_checkpoints]:
                    old.unlink()
        barrier(self.dist)

    def _train_state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "skipped": self.skipped,
            "best": self.best,
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "scaler": self.ctx.scaler.state_dict() if self.ctx.scaler is not None else None,
            "disc": self.disc.state_dict() if self.disc is not None else None,
            "disc_optimizer": self.disc_opt.state_dict() if self.disc_opt is not None else None,
            "disc_scheduler": self.disc_sched.state_dict() if self.disc_sched is not None else None,
            "distill": self.distiller.state_dict() if self.distiller is not None else None,
            "rng": ckpt_io.rng_state(),
            "train_config": self.cfg.to_dict(),
        }

    def _restore(self, ckpt: dict[str, Any]) -> None:
        state = ckpt["train"]
        self.model.load_state_dict(ckpt["state_dict"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        if self.ctx.scaler is not None and state["scaler"] is not None:
            self.ctx.scaler.load_state_dict(state["scaler"])
        if self.disc is not None and state["disc"] is not None:
            self.disc.load_state_dict(state["disc"])
            self.disc_opt.load_state_dict(state["disc_optimizer"])
            self.disc_sched.load_state_dict(state["disc_scheduler"])
        if self.distiller is not None and state.get("distill") is not None:
            self.distiller.load_state_dict(state["distill"])
        self.step, self.skipped, self.best = state["step"], state["skipped"], state["best"]
        if self.cfg.steps < self.step:
            raise ConfigError(f"{self.run_dir} is at step {self.step} already: steps must be at least {self.step}, got {self.cfg.steps}")
        ckpt_io.set_rng_state(state["rng"])
        logger.info("resumed at step %d", self.step)

    def _gan_enabled(self) -> bool:
        w = self.cfg.loss.weights
        return self.cfg.gan_start_step < self.cfg.steps and (w.adv > 0 or w.feature_match > 0)


def _read_last(last: Path, ckpt_dir: Path) -> dict[str, Any]:
    """The training checkpoint last.pt; if it is unreadable, an error naming the newest step_*.pt that reads."""
    try:
        return ckpt_io.load_training_checkpoint(last)
    except CheckpointError as err:
        for candidate in sorted(ckpt_dir.glob("step_*.pt"), reverse=True):
            try:
                step = ckpt_io.load_training_checkpoint(candidate)["train"]["step"]
            except CheckpointError:
                continue
            raise CheckpointError(
                last, f"{err.reason}; the newest readable checkpoint is {candidate} (step {step}): "
                f"copy it to {last} and resume again"
            ) from err  # fmt: skip
        raise


def _load_init(model: DFN4, init: str) -> None:
    """Copies the weights of `init` (a shipped name or a checkpoint) into the freshly built model."""
    source = load_model(init)
    if source.cfg != model.cfg:
        raise ConfigError(f"init {init!r} is a different model config than this run's (variant and [model] must match)")
    model.load_state_dict(source.state_dict())
    logger.info("weights initialised from %s", init)


def _distiller(cfg: TrainConfig, model: DFN4, device: torch.device):
    """The frozen teacher and distillation loss when cfg.distill names a teacher, else None."""
    if not cfg.distill.enabled:
        return None
    from dfn4core.train.distill import Distiller

    return Distiller(cfg, model, device)


def _valid_batches(dataset, cfg: TrainConfig):
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, range(min(cfg.valid_items, len(dataset)))),
        batch_size=cfg.batch_size,
        num_workers=0,
    )
    return iter(loader)


def _precision(amp: str, device: torch.device) -> tuple[torch.dtype | None, torch.amp.GradScaler | None]:
    """Autocast dtype and grad scaler for `amp` on `device` (the CPU always trains in fp32)."""
    if device.type != "cuda" or amp == "off":
        return None, None
    if amp == "bf16" or (amp == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16, None
    return torch.float16, torch.amp.GradScaler("cuda")

"""One training step of the generator, one of the discriminator, and validation.

Each step returns its named loss terms as tensors (no `.item()` inside the math); a step whose
loss or gradient is not finite on any rank is skipped on every rank and reported as None.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dfn4core.errors import MetricError
from dfn4core.losses import aligned_pair
from dfn4core.metrics.sdr import si_sdr_batch
from dfn4core.model.dfnet4 import DFN4, DFN4Output
from dfn4core.train.distributed import DistContext, all_ranks_true


@dataclass
class StepContext:
    """What a step needs besides the batch."""

    device: torch.device
    dist: DistContext
    grad_clip: float
    autocast_dtype: torch.dtype | None  # None: full precision
    scaler: torch.amp.GradScaler | None  # fp16 only

    def autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)


def train_step(
    model: nn.Module,
    loss_fn: nn.Module,
    batch: dict[str, Tensor],
    optimizer: torch.optim.Optimizer,
    ctx: StepContext,
    disc: nn.Module | None = None,
    extra_loss: Callable[[Tensor, DFN4Output], dict[str, Tensor]] | None = None,
) -> tuple[dict[str, Tensor], Tensor] | None:
    """One generator update of every parameter in `optimizer` (gradients clipped together).

    `extra_loss(noisy, out)` adds named terms to the task losses (distillation: a frozen
    teacher's output for `noisy` against the student's `out`).

    Returns:
        The detached named terms (plus "total") and the enhanced wave (detached, for the
        discriminator step), or None when the step was skipped (loss or gradient not finite).
    """
    noisy, clean, noise = (batch[k].to(ctx.device, non_blocking=True) for k in ("noisy", "clean", "noise"))
    saved = _persistent_buffers(model)  # a bad batch must not poison BatchNorm statistics either
    with ctx.autocast():
        out = model(noisy)
        terms = loss_fn(_float_output(out), clean, noise, disc)
        if extra_loss is not None:
            terms.update(extra_loss(noisy, out))
    total = sum(terms.values())
    optimizer.zero_grad(set_to_none=True)
    if not all_ranks_true(bool(torch.isfinite(total)), ctx.dist, ctx.device) or not _backward_and_step(
        total, [p for group in optimizer.param_groups for p in group["params"]], optimizer, ctx
    ):
        _restore_buffers(model, saved)
        return None
    return {**{k: v.detach() for k, v in terms.items()}, "total": total.detach()}, out.wave.detach()


def gan_step(
    disc: nn.Module,
    disc_loss_fn,
    clean: Tensor,
    fake: Tensor,
    optimizer: torch.optim.Optimizer,
    ctx: StepContext,
) -> dict[str, Tensor] | None:
    """One discriminator update on aligned clean (real) and enhanced (fake, detached) waves."""
    with ctx.autocast():
        # One forward over real and fake together: DDP expects one forward per backward.
        outs, _ = disc(torch.cat((clean, fake.detach()), dim=0))
        real_outs, fake_outs = zip(*(o.float().chunk(2, dim=0) for o in outs))
        loss = disc_loss_fn(list(real_outs), list(fake_outs))
    optimizer.zero_grad(set_to_none=True)
    if not all_ranks_true(bool(torch.isfinite(loss)), ctx.dist, ctx.device):
        return None
    if not _backward_and_step(loss, disc.parameters(), optimizer, ctx):
        return None
    return {"disc": loss.detach()}


def _backward_and_step(loss: Tensor, params: Iterable[Tensor], optimizer, ctx: StepContext) -> bool:
    params = [p for p in params if p.requires_grad]
    if ctx.scaler is not None:
        ctx.scaler.scale(loss).backward()
        ctx.scaler.unscale_(optimizer)
    else:
        loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(params, ctx.grad_clip if ctx.grad_clip > 0 else math.inf)
    if not all_ranks_true(bool(torch.isfinite(norm)), ctx.dist, ctx.device):
        optimizer.zero_grad(set_to_none=True)
        if ctx.scaler is not None:
            ctx.scaler.update()  # lowers the scale, as a skipped fp16 step should
        return False
    if ctx.scaler is not None:
        ctx.scaler.step(optimizer)
        ctx.scaler.update()
    else:
        optimizer.step()
    return True


def _persistent_buffers(model: nn.Module) -> dict[str, Tensor]:
    keys = set(model.state_dict())
    return {name: b.detach().clone() for name, b in model.named_buffers() if name in keys}


def _restore_buffers(model: nn.Module, saved: dict[str, Tensor]) -> None:
    with torch.no_grad():
        for name, b in model.named_buffers():
            if name in saved:
                b.copy_(saved[name])


def _float_output(out):
    """Losses run in fp32 even under autocast (compressed spectra are sensitive to bf16)."""
    for name in ("wave", "spec", "erb_gains", "lsnr_db", "df_weights", "emb"):
        setattr(out, name, getattr(out, name).float())
    return out


@torch.no_grad()
def validate(model: DFN4, loss_fn: nn.Module, batches: Iterable[dict[str, Tensor]], device: torch.device) -> dict[str, float]:
    """Means over the validation batches: loss terms, SI-SDR (dB) and wide-band PESQ of the output
    and of the noisy input. PESQ skips items it cannot score (silent reference, no utterance)."""
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}

    def add(name: str, values: list[float]) -> None:
        sums[name] = sums.get(name, 0.0) + sum(values)
        counts[name] = counts.get(name, 0) + len(values)

    for batch in batches:
        noisy, clean, noise = (batch[k].to(device) for k in ("noisy", "clean", "noise"))
        out = model(noisy)
        terms = loss_fn(out, clean, noise, None)
        n = noisy.shape[0]
        for k, v in terms.items():
            add(f"valid_{k}", [float(v)] * n)
        add("valid_loss", [float(sum(terms.values()))] * n)
        enhanced, target = aligned_pair(out.wave, clean, model.cfg.dsp)
        add("si_sdr", si_sdr_batch(target, enhanced).tolist())
        add("si_sdr_noisy", si_sdr_batch(clean, noisy).tolist())
        add("pesq", _pesq_scores(target, enhanced, model.cfg.dsp.sr))
        add("pesq_noisy", _pesq_scores(clean, noisy, model.cfg.dsp.sr))
    model.train(was_training)
    return {k: sums[k] / counts[k] for k in sums if counts[k]}


def _pesq_scores(reference: Tensor, estimate: Tensor, sr: int) -> list[float]:
    from dfn4core.metrics import pesq

    scores = []
    for ref, est in zip(reference.float().cpu().numpy(), estimate.float().cpu().numpy()):
        try:
            scores.append(pesq(ref, est, sr))
        except MetricError:
            continue
    return scores

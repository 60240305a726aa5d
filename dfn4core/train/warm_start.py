"""Warm start from DeepFilterNet3, the training half: Mamba blocks learn DFN3's GRUs, then DFN3's output.

The teacher is a DFN4 holding DFN3 itself (`dfn4core.model.dfn3_import.with_dfn3_grus`);
`recipes/default/warm_start.py` runs both stages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from dfn4core.losses.distill import DistillConfig, DistillLoss, DistillWeights
from dfn4core.model.dfn3_import import TEMPORAL_BLOCKS
from dfn4core.model.dfnet4 import DFN4
from dfn4core.train.schedule import make_scheduler


def blocks_to_fit(model: DFN4) -> dict[str, bool]:
    """The modules `fit_temporal` fits, each with whether all its weights train (True) or only
    its temporal layers: the temporal blocks when they have DFN3's widths (their linear layers
    loaded), else the blocks with their linear layers and, whole, the DF decoder (whose temporal
    output width then differs from DFN3's)."""
    if model.cfg.emb_dim == 256:
        return {block: False for block in TEMPORAL_BLOCKS}
    return {"encoder.temporal": True, "erb_decoder.temporal": True, "df_decoder": True}


class _Updater:
    """AdamW without weight decay, optional linear warm-up, cosine decay to 1 % of lr over `steps`,
    gradients clipped at norm 1: the optimizer of both warm-start stages."""

    def __init__(self, params: list[nn.Parameter], lr: float, steps: int, warmup_steps: int = 0):
        self.params = params
        self.optim = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
        self.sched = make_scheduler(self.optim, warmup_steps, steps, 0.01)

    def step(self, loss: Tensor) -> None:
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optim.step()
        self.sched.step()


def _like_student(target: Tensor, y: Tensor) -> Tensor:
    """The teacher's block output cut to the student's: of the DF decoder's coefficients (B, T, F,
    taps, 2), the taps of the student's orders, which are the teacher's first ones."""
    return target[:, :, :, : y.shape[3]] if target.dim() == 5 else target


def fit_temporal(
    student: DFN4,
    teacher: DFN4,
    batches: Iterable[Tensor],
    steps: int,
    lr: float = 1e-3,
    on_step: Callable[[int, dict[str, float]], Any] | None = None,
) -> DFN4:
    """Fits the student's temporal blocks to the teacher's, block by block, on real audio.

    Each block sees the teacher's input to that block (so errors do not pile up from block to
    block) and learns the teacher's output (MSE relative to the output's power). What trains is
    `blocks_to_fit(student)`.

    Args:
        student: the DFN4 to fit (trained in place).
        teacher: a network of the same spectral layout: DFN3's GRUs (`with_dfn3_grus`), or a
            trained DFN4 whose smaller copy the student is (`dfn4core.model.shrink`); a student
            of fewer DF orders (its orders the teacher's first ones) learns those orders' taps.
        batches: noisy waveforms (B, N * hop) at the model's rate, one per step.
        steps: number of optimizer steps.
        lr: AdamW learning rate (cosine decay to 1 %).
        on_step: called with (step, {block: loss}) after every step.
    """
    blocks = blocks_to_fit(student)
    captured: dict[str, tuple[tuple[Tensor, ...], Tensor]] = {}

    def keep(name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            args = tuple(x.detach() for x in inputs if isinstance(x, Tensor))
            captured[name] = (args, output[0].detach())

        return hook

    hooks = [teacher.get_submodule(b).register_forward_hook(keep(b)) for b in blocks]
    params = []
    for b, whole in blocks.items():
        module = student.get_submodule(b)
        params += [p for n, p in module.named_parameters() if whole or n.startswith("layers.")]
    updater = _Updater(params, lr, steps)
    student.eval()  # BatchNorms keep DFN3's statistics; gradients flow all the same
    try:
        for step, wave in zip(range(steps), batches):
            with torch.no_grad():
                teacher(wave)
            losses, total = {}, torch.zeros(())
            for b in blocks:
                args, target = captured[b]
                module = student.get_submodule(b)
                y = module(*args, module.init_state(wave.shape[0], wave.device, wave.dtype))[0]
                target = _like_student(target, y)
                loss = torch.mean((y - target) ** 2) / target.pow(2).mean().clamp_min(1e-8)
                losses[b] = float(loss.detach())
                total = total + loss
            updater.step(total)
            if on_step is not None:
                on_step(step, losses)
    finally:
        for h in hooks:
            h.remove()
    return student.eval()


def distill_to_teacher(
    student: DFN4,
    teacher: DFN4,
    batches: Iterable[Tensor],
    steps: int,
    lr: float = 3e-4,
    on_step: Callable[[int, dict[str, float]], Any] | None = None,
    warmup_steps: int = 0,
) -> DFN4:
    """End-to-end: the whole student learns the teacher's output (after `fit_temporal`).

    Block-wise fitting leaves errors that add up through the network; this stage trains every
    weight on `DistillLoss`'s output-spectrum, ERB-gain and deep-filtered-band terms against the
    teacher (DFN3 itself, `with_dfn3_grus`). BatchNorms keep their statistics (eval mode).

    Args:
        student, teacher: as in `fit_temporal`; the teacher's DF orders equal the student's.
        batches: noisy waveforms (B, N * hop), one per step.
        steps: optimizer steps (AdamW, cosine decay to 1 % of lr).
        on_step: called with (step, {term: value}) after every step.
        warmup_steps: steps of linear warm-up to `lr` (0: start at `lr`).
    """
    loss_fn = DistillLoss(DistillConfig(weights=DistillWeights(emb=0.0)), student.cfg, teacher.cfg)
    loss_fn = loss_fn.to(next(student.parameters()).device)  # as the models (no buffers today)
    updater = _Updater([p for p in student.parameters() if p.requires_grad], lr, steps, warmup_steps)
    student.eval()  # BatchNorms keep DFN3's statistics; gradients flow all the same
    for step, wave in zip(range(steps), batches):
        with torch.no_grad():
            target = teacher(wave)
        terms = loss_fn(student(wave), target)
        updater.step(sum(terms.values()))
        if on_step is not None:
            on_step(step, {k: float(v.detach()) for k, v in terms.items()})
    return student.eval()

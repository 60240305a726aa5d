"""Knowledge distillation: `DistillLoss` pulls a student DFN4's outputs towards a frozen teacher's.

Four named terms, each with a weight in `DistillConfig.weights` (a weight of 0 turns a term off):
spec (compressed output magnitudes), erb_gains (the ERB masks), df (what the deep filter does)
and emb (the student's embedding through a learned projection onto the teacher's).

DF matching: student and teacher may combine different DF orders (lite (3, 5), full (3, 5, 7)),
so their coefficient tensors do not line up. The term therefore matches the *combined deep-filtered
low band*, the output of MultiResolutionDF (`out.spec[..., :nb_df, :]`), as compressed complex
spectra: it is the same for any split of the filter over orders and weights, and it is what the
coefficients are for. The spec term compares compressed magnitudes only, over every bin, so the
df term adds the phase of the low band, where the deep filter works.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from dfn4core.config import ModelConfig, check_types
from dfn4core.errors import ConfigError
from dfn4core.model.dfnet4 import DFN4Output

SPEC_EPS = 1e-12  # keeps |X|^(gamma - 1) finite at silent bins


@dataclass(frozen=True)
class DistillWeights:
    """Weight of each distillation term (added to the task losses of `LossConfig`).

    Args:
        spec: MSE of compressed magnitudes |X|^gamma of student and teacher output spectra.
        erb_gains: MSE of the ERB gains (masks in [0, 1]).
        df: MSE of the compressed complex deep-filtered low band X |X|^(gamma - 1).
        emb: MSE between the projected student embedding and the teacher embedding.
    """

    spec: float = 500.0
    erb_gains: float = 10.0
    df: float = 500.0
    emb: float = 1.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"distill weight weights.{f.name} must be a number >= 0, got {value!r}")
            object.__setattr__(self, f.name, float(value))


@dataclass(frozen=True)
class DistillConfig:
    """The `[distill]` section of a training config.

    Args:
        teacher: path of the teacher checkpoint; empty (the default) trains without a teacher.
            Stored in the run's train.toml, so `--resume` finds the same teacher.
        gamma: magnitude compression exponent of the spec and df terms.
        weights: the named weight of each term.
    """

    teacher: str = ""
    gamma: float = 0.3
    weights: DistillWeights = field(default_factory=DistillWeights)

    def __post_init__(self) -> None:
        if not 0 < self.gamma <= 1:
            raise ConfigError(f"distill.gamma must be in (0, 1], got {self.gamma}")

    @property
    def enabled(self) -> bool:
        return bool(self.teacher)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DistillConfig:
        """From `to_dict()` or a TOML table; unknown keys are a ConfigError naming them."""
        data = dict(_checked(cls, data, "distill."))
        if "weights" in data:
            if not isinstance(data["weights"], dict):
                raise ConfigError(f"distill.weights must be a table, got {data['weights']!r}")
            data["weights"] = DistillWeights(**_checked(DistillWeights, data["weights"], "distill.weights."))
        return cls(**data)


def compressed(spec: Tensor, gamma: float) -> tuple[Tensor, Tensor]:
    """(|X|^gamma, X |X|^(gamma - 1)). Shapes: (..., 2) -> (...), (..., 2)."""
    mag = spec.pow(2).sum(-1).clamp_min(SPEC_EPS).sqrt()
    return mag.pow(gamma), spec * mag.pow(gamma - 1).unsqueeze(-1)


class DistillLoss(nn.Module):
    """The weighted distillation terms between a student's and a frozen teacher's outputs.

    Holds the embedding projection (a Linear from the student's emb_width to the teacher's), which
    trains with the student: put its parameters in the student's optimizer and its state_dict in
    the checkpoint. The teacher itself is not part of this module.

    Args:
        cfg: weights and gamma.
        student: the student's model config.
        teacher: the teacher's model config; its DSP config must equal the student's, so that
            frames, bins, ERB bands and output delay line up.
    Raises:
        ConfigError: the two DSP configs differ.
    """

    def __init__(self, cfg: DistillConfig, student: ModelConfig, teacher: ModelConfig):
        super().__init__()
        if student.dsp != teacher.dsp:
            raise ConfigError(f"teacher and student need the same DSP config, got {teacher.dsp} and {student.dsp}")
        self.cfg, self.nb_df = cfg, student.dsp.nb_df
        self.proj = nn.Linear(student.emb_width, teacher.emb_width) if cfg.weights.emb > 0 else None

    def forward(self, student: DFN4Output, teacher: DFN4Output) -> dict[str, Tensor]:
        """The weighted terms, named distill_spec, distill_erb_gains, distill_df, distill_emb.

        Args:
            student: the student's output for a batch.
            teacher: the teacher's output for the same batch (computed without gradients).
        Returns:
            {name: scalar tensor} for each term with a positive weight.

        Shapes: spec (B, T, F, 2); erb_gains (B, T, E); emb (B, T, D_student) and (B, T, D_teacher).
        """
        w, gamma, terms = self.cfg.weights, self.cfg.gamma, {}
        s_spec, t_spec = student.spec.float(), teacher.spec.float().detach()
        if w.spec > 0:
            terms["distill_spec"] = w.spec * (compressed(s_spec, gamma)[0] - compressed(t_spec, gamma)[0]).pow(2).mean()
        if w.erb_gains > 0:
            diff = student.erb_gains.float() - teacher.erb_gains.float().detach()
            terms["distill_erb_gains"] = w.erb_gains * diff.pow(2).mean()
        if w.df > 0:
            s_low = compressed(s_spec[:, :, : self.nb_df], gamma)[1]
            t_low = compressed(t_spec[:, :, : self.nb_df], gamma)[1]
            terms["distill_df"] = w.df * (s_low - t_low).pow(2).mean()
        if self.proj is not None:
            diff = self.proj(student.emb.float()) - teacher.emb.float().detach()
            terms["distill_emb"] = w.emb * diff.pow(2).mean()
        return terms


def _checked(cls: type, data: Any, prefix: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.')} must be a table, got {data!r}")
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ConfigError(f"unknown distill config key: {', '.join(prefix + k for k in unknown)}")
    check_types(cls, data, prefix)
    return data

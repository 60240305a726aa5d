"""TrainConfig: every training setting, read from TOML (unknown keys are errors) and written back.

A TOML file looks like:

    variant = "lite"          # full | lite | tiny: the ModelConfig to start from
    steps = 20000
    batch_size = 8
    [model]                   # optional overrides of the variant's ModelConfig fields
    enc_layers = 2
    [optim]
    lr = 1e-3
    [loss.weights]            # see dfn4core.losses.config.LossConfig
    spec_mag = 1000.0
    [distill]                 # optional: a frozen teacher (see dfn4core.losses.distill)
    teacher = "full.pt"
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dfn4core.config import ModelConfig, check_types
from dfn4core.errors import ConfigError
from dfn4core.losses.config import LossConfig
from dfn4core.losses.distill import DistillConfig

Variant = Literal["full", "lite", "tiny"]
Amp = Literal["auto", "off", "bf16", "fp16"]
BestMetric = Literal["valid_loss", "si_sdr", "pesq"]


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warm-up then cosine decay, and gradient clipping.

    Args:
        lr: peak learning rate of the generator.
        lr_min: learning rate at the end of the cosine.
        warmup_steps: steps of linear warm-up from 0 to lr.
        weight_decay: AdamW decoupled weight decay.
        betas: AdamW betas.
        grad_clip: max global gradient norm (0 disables clipping).
        disc_lr: learning rate of the discriminator (same schedule shape).
    """

    lr: float = 1e-3
    lr_min: float = 1e-5
    warmup_steps: int = 1000
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0
    disc_lr: float = 2e-4

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"optim.betas must be two numbers in [0, 1), got {list(self.betas)}")
        if self.lr <= 0 or self.lr_min < 0 or self.lr_min > self.lr or self.disc_lr <= 0:
            raise ConfigError(f"need 0 <= lr_min <= lr and positive lr, disc_lr; got {self.lr}, {self.lr_min}, {self.disc_lr}")
        if self.warmup_steps < 0 or self.grad_clip < 0:
            raise ConfigError("warmup_steps and grad_clip must be >= 0")


@dataclass(frozen=True)
class TrainConfig:
    """All training settings.

    Args:
        variant: the ModelConfig classmethod to start from.
        model: overrides of ModelConfig fields (e.g. {"enc_layers": 2}).
        steps: total optimizer steps.
        batch_size: items per step and per process.
        num_workers: DataLoader worker processes.
        seed: seeds model init, data order and mixing.
        gan_start_step: generator-only warm-up; the discriminator trains from this step on
            (set it >= steps to train without the GAN).
        amp: mixed precision on GPU: "auto" (bf16 where supported), "bf16", "fp16" or "off".
            The CPU always trains in fp32.
        log_every: steps between lines in metrics.jsonl.
        valid_every: steps between validations (0 disables them).
        valid_items: validation items scored each time (the start of the fixed valid split).
        ckpt_every: steps between checkpoints (one is always written at the end).
        keep_checkpoints: numbered checkpoints kept besides last.pt and best.pt.
        best_metric: what picks best.pt: "si_sdr" or "pesq" (higher is better) or "valid_loss" (lower).
        optim: optimizer and schedule.
        loss: loss terms and weights.
        distill: the teacher and the distillation weights (no teacher: ordinary training).
        init: weights that start a new run instead of a random init: a shipped model name ("full",
            "lite") or a checkpoint file of the same model config (fine-tuning). Only the weights are
            taken (optimizer and schedule start fresh); a resumed run ignores it.
        freeze_norm: keep the BatchNorm statistics (and their eval-mode behaviour) while training:
            for fine-tuning a warm start from DFN3 (`recipes/default/warm_start.py`), whose norms
            hold DFN3's folded statistics, on small batches.
    """

    variant: Variant = "full"
    model: dict[str, Any] = field(default_factory=dict)
    steps: int = 100_000
    batch_size: int = 8
    num_workers: int = 2
    seed: int = 0
    gan_start_step: int = 20_000
    amp: Amp = "auto"
    log_every: int = 50
    valid_every: int = 2_000
    valid_items: int = 64
    ckpt_every: int = 1_000
    keep_checkpoints: int = 3
    best_metric: BestMetric = "si_sdr"
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    init: str = ""
    freeze_norm: bool = False

    def __post_init__(self) -> None:
        if self.variant not in ("full", "lite", "tiny"):
            raise ConfigError(f"variant must be full, lite or tiny, got {self.variant!r}")
        if self.amp not in ("auto", "off", "bf16", "fp16"):
            raise ConfigError(f"amp must be auto, off, bf16 or fp16, got {self.amp!r}")
        if self.best_metric not in ("valid_loss", "si_sdr", "pesq"):
            raise ConfigError(f"best_metric must be si_sdr, pesq or valid_loss, got {self.best_metric!r}")
        for name in ("steps", "batch_size", "log_every", "ckpt_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("num_workers", "gan_start_step", "valid_every", "valid_items", "keep_checkpoints"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        model = self.model_config()  # unknown or invalid model overrides fail here, not mid-run
        if (model.lsnr_min_db, model.lsnr_max_db) != (self.loss.lsnr_min_db, self.loss.lsnr_max_db):
            raise ConfigError("loss.lsnr_min_db/lsnr_max_db must equal the model's lsnr range")

    def model_config(self) -> ModelConfig:
        base = getattr(ModelConfig, self.variant)()
        known = {f.name for f in dataclasses.fields(ModelConfig)} - {"dsp"}
        unknown = sorted(set(self.model) - known)
        if unknown:
            raise ConfigError(f"unknown [model] keys: {', '.join(unknown)}")
        check_types(ModelConfig, self.model, "model.")
        return dataclasses.replace(base, **self.model)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["loss"] = self.loss.to_dict()
        out["distill"] = self.distill.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        data = dict(data)
        _check_keys(cls, data, source)
        if "optim" in data:
            _check_keys(OptimConfig, data["optim"], source, "optim")
        try:
            if "optim" in data:
                data["optim"] = OptimConfig(**data["optim"])
            if "loss" in data:
                data["loss"] = LossConfig.from_dict(data["loss"])
            if "distill" in data:
                data["distill"] = DistillConfig.from_dict(data["distill"])
            return cls(**data)
        except (TypeError, ConfigError) as err:
            raise ConfigError(f"{source}: {err}") from err

    def replace(self, **overrides: Any) -> TrainConfig:
        """A copy with top-level or optim fields changed (CLI overrides); None values are ignored."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        optim_keys = {f.name for f in dataclasses.fields(OptimConfig)}
        optim = {k: overrides.pop(k) for k in list(overrides) if k in optim_keys}
        _check_keys(TrainConfig, overrides, "overrides")
        return dataclasses.replace(self, optim=dataclasses.replace(self.optim, **optim), **overrides)


def load_train_config(path: str | Path | None, base: TrainConfig | None = None) -> TrainConfig:
    """Read a TrainConfig from TOML; None gives the defaults.

    Args:
        path: the TOML file.
        base: the settings the file's keys change (a resumed run's); None = the defaults.
    """
    if path is None:
        return base or TrainConfig()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror})") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML ({err})") from err
    return TrainConfig.from_dict(data if base is None else _merged(base.to_dict(), data), source=str(path))


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` with the keys of `changes` replaced, tables merged key by key."""
    out = dict(base)
    for key, value in changes.items():
        old = out.get(key)
        out[key] = _merged(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return out


def dump_toml(data: dict[str, Any]) -> str:
    """A config dict as TOML; None values are left out (TOML has no null; they read back as defaults)."""
    import tomli_w

    return tomli_w.dumps(_drop_none(data))


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_drop_none(v) for v in value]
    return value


def _check_keys(cls: type, data: Any, source: str, section: str = "") -> None:
    """A ConfigError for a non-table, an unknown key or a value of the wrong type, naming `section`."""
    where = f"{source} [{section}]" if section else source
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table, got {type(data).__name__}")
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ConfigError(f"{where}: unknown keys: {', '.join(unknown)}")
    check_types(cls, data, f"{source}: {section + '.' if section else ''}")

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
import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dfn4core.config import ModelConfig, check_table, dataclass_from_dict
from dfn4core.errors import ConfigError
from dfn4core.losses.config import LossConfig
from dfn4core.losses.distill import DistillConfig

LEGACY_LSNR_KEYS = {"lsnr_min_db", "lsnr_max_db"}  # [loss] keys of dfn4 <= 0.2; the range is the model's
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
        variant: the ModelConfig variant to start from (one of `ModelConfig.VARIANTS`).
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

    variant: str = "full"
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
        if self.variant not in ModelConfig.VARIANTS:
            raise ConfigError(f"variant must be one of {', '.join(ModelConfig.VARIANTS)}, got {self.variant!r}")
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
        self.model_config()  # unknown or invalid model overrides fail here, not mid-run

    def model_config(self) -> ModelConfig:
        base = ModelConfig.variant(self.variant)
        check_table(ModelConfig, self.model, "model.", known={f.name for f in dataclasses.fields(ModelConfig)} - {"dsp"})
        return dataclasses.replace(base, **self.model)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["loss"] = self.loss.to_dict()
        out["distill"] = self.distill.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        convert = {"optim": functools.partial(dataclass_from_dict, OptimConfig),
                   "loss": lambda value, _: LossConfig.from_dict(value),
                   "distill": lambda value, _: DistillConfig.from_dict(value)}  # fmt: skip
        try:
            data, legacy = _without_legacy_lsnr(data)
            cfg = dataclass_from_dict(cls, data, convert=convert)
            model = cfg.model_config()
            if any(value != getattr(model, key) for key, value in legacy.items()):
                raise ConfigError("the local-SNR range is the model's: set [model] lsnr_min_db/lsnr_max_db, not [loss]")
            return cfg
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from err

    def replace(self, **overrides: Any) -> TrainConfig:
        """A copy with top-level or optim fields changed (CLI overrides); None values are ignored."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        optim_keys = {f.name for f in dataclasses.fields(OptimConfig)}
        optim = {k: overrides.pop(k) for k in list(overrides) if k in optim_keys}
        try:
            check_table(TrainConfig, overrides)
        except ConfigError as err:
            raise ConfigError(f"overrides: {err}") from err
        return dataclasses.replace(self, optim=dataclasses.replace(self.optim, **optim), **overrides)


def _without_legacy_lsnr(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`data` without [loss] lsnr_min_db/lsnr_max_db, and those values: run folders of dfn4 <= 0.2 hold them
    (a copy of the model's range then); they are accepted when they equal the model's."""
    loss = data.get("loss")
    if not isinstance(loss, dict) or not LEGACY_LSNR_KEYS & loss.keys():
        return data, {}
    legacy = {k: v for k, v in loss.items() if k in LEGACY_LSNR_KEYS}
    return {**data, "loss": {k: v for k, v in loss.items() if k not in LEGACY_LSNR_KEYS}}, legacy


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

"""The configs of a run: a new run's from its files and options; a resumed run's from its own folder.

A resumed run reads the `train.toml` and `data.toml` its run folder holds. A `--config` file given
again changes only the keys it sets, and options apply on top; a change that resuming cannot honour
(the model, the data, the optimizer, the seed...) is refused, never recorded and then ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dfn4core.data.config import DataConfig, load_data_config
from dfn4core.errors import ConfigError
from dfn4core.train.config import TrainConfig, load_train_config

TRAIN_NAME, DATA_NAME = "train.toml", "data.toml"
# Settings a resumed run takes from the command line: they change how long it runs or what it
# writes, not what the steps compute (a larger `steps` extends the run).
RESUMABLE = ("steps", "num_workers", "log_every", "ckpt_every", "keep_checkpoints")


def run_configs(
    run_dir: str | Path,
    *,
    resume: bool,
    config: str | Path | None = None,
    data: str | Path | None = None,
    **overrides: Any,
) -> tuple[TrainConfig, DataConfig]:
    """The training and data configs of a new or a resumed run, both validated.

    Args:
        run_dir: the run folder.
        resume: read the run's own configs from run_dir.
        config: training TOML; for a resumed run, the keys it sets change the run's.
        data: data TOML; needed for a new run, optional (and then the same) on resume.
        **overrides: TrainConfig.replace fields (None = not given).

    Returns:
        (train config, data config).

    Raises:
        ConfigError: an invalid file, no data for a new run, nothing to resume, or a change a
            resumed run cannot take (names each setting and both values).
    """
    if not resume:
        if data is None:
            raise ConfigError("a new run needs a data config")
        return load_train_config(config).replace(**overrides), load_data_config(data)
    run_dir = Path(run_dir)
    saved_path, data_path = run_dir / TRAIN_NAME, run_dir / DATA_NAME
    if not saved_path.is_file() or not data_path.is_file():
        raise ConfigError(f"{run_dir}: nothing to resume (no {TRAIN_NAME} and {DATA_NAME})")
    saved = load_train_config(saved_path)
    cfg = load_train_config(config, base=saved).replace(**overrides)
    _refuse_changes(run_dir, TRAIN_NAME, saved.to_dict(), cfg.to_dict(), RESUMABLE)
    saved_data = load_data_config(data_path)
    if data is not None:
        _refuse_changes(run_dir, DATA_NAME, saved_data.to_dict(), load_data_config(data).to_dict(), ())
    return cfg, saved_data


def _refuse_changes(run_dir: Path, name: str, saved: dict, wanted: dict, allowed: tuple[str, ...]) -> None:
    old, new = _flat(saved), _flat(wanted)
    changed = [k for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k) and k not in allowed]
    if changed:
        listed = ", ".join(f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in changed)
        raise ConfigError(
            f"{run_dir} resumes with the settings of its {name}, and these differ: {listed}; to change them, "
            f"start a new run from its weights (--init {run_dir / 'checkpoints' / 'last.pt'})"
        )


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"optim": {"lr": 1}} -> {"optim.lr": 1}; lists and tuples compare as lists."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = list(value) if isinstance(value, (list, tuple)) else value
    return out

"""Training checkpoints: the model checkpoint plus everything needed to resume exactly.

A training checkpoint is a model checkpoint (`format_version`, `model_config`, `state_dict`, so
`load_model` reads it) with a `train` entry: step, epoch, optimizer, scheduler, grad scaler,
discriminator and its optimizer, every RNG state, and the resolved configs. It is written
atomically and read with `weights_only=True`, so loading never runs code.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dfn4core.atomic import write_atomically
from dfn4core.errors import CheckpointError
from dfn4core.model.checkpoint import checkpoint_dict, read_checkpoint
from dfn4core.model.dfnet4 import DFN4


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and CUDA) RNG states, as plain types and tensors."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }  # fmt: skip
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_as_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_checkpoint(path: Path, model: DFN4, train: dict[str, Any]) -> Path:
    """Write model + training state to `path` atomically (temp file in the same folder, then rename)."""
    payload = checkpoint_dict(model, train=train)
    return write_atomically(path, lambda tmp: torch.save(payload, tmp))


def load_training_checkpoint(path: Path) -> dict[str, Any]:
    """Read a training checkpoint; a model-only checkpoint cannot be resumed from."""
    ckpt = read_checkpoint(path)
    if "train" not in ckpt:
        raise CheckpointError(path, "a model checkpoint without training state: cannot resume from it")
    return ckpt


def _as_tuple(x: Any) -> Any:
    """Lists back to the nested tuples random.setstate wants."""
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x

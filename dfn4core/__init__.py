"""dfn4core: DeepFilterNet4 speech enhancement (model, DSP, enhancement).

Public API: `DFN4`, `ModelConfig`, `load_model`, `save_model`, `enhance`, `Enhancer`.
"""

from dfn4core.config import DspConfig, ModelConfig
from dfn4core.enhance import Enhancer, enhance
from dfn4core.errors import AudioError, CheckpointError, ConfigError, Dfn4Error
from dfn4core.model.checkpoint import load_model, save_model
from dfn4core.model.dfnet4 import DFN4

__version__ = "0.1.0"

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

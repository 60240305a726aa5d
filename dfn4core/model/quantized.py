"""INT8 layers of a DFN4 in torch (torch.ao eager mode): which layers become INT8, and how.

Only leaf Linear (dynamic) or Linear and Conv layers (static, qat) become INT8. Mamba's x_proj and
dt_proj (they set the scan's decay and input), its depthwise conv (the conv state), the GRU, the
grouped linears (batched matmuls), the transposed convs, the STFT/ISTFT, the feature norms and the
deep filter stay float, and so does every state tensor: 8-bit recurrent state is what ruined naive
INT8 DeepFilterNet. A quantized checkpoint is a float one plus `quantization` = {method, backend}:
`load_model` rebuilds the float model, applies `quantized_structure`, then loads the INT8 weights.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.ao import quantization as tq

from dfn4core.errors import CheckpointError, ConfigError
from dfn4core.model.dfnet4 import DFN4
from dfn4core.model.mamba import Mamba

logger = logging.getLogger(__name__)

METHODS = ("dynamic", "static", "qat")
BACKENDS = ("x86", "fbgemm")
SCAN_PROJECTIONS = ("x_proj", "dt_proj")  # Mamba's dt, B and C: they set the scan's decay, kept float


class QuantizedLayer(nn.Module):
    """A float leaf layer between a quantize and a dequantize stub: float in, float out, INT8 inside."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.quant, self.layer, self.dequant = tq.QuantStub(), layer, tq.DeQuantStub()

    def forward(self, x: Tensor) -> Tensor:
        return self.dequant(self.layer(self.quant(x)))


def quantized_layer_names(model: nn.Module, method: str) -> list[str]:
    """The leaf layers `method` makes INT8: nn.Linear (dynamic) or nn.Linear/Conv1d/Conv2d (static, qat)."""
    check_method(method)
    kinds = (nn.Linear,) if method == "dynamic" else (nn.Linear, nn.Conv1d, nn.Conv2d)
    # Mamba uses its conv1d's weight directly (conv state path), so its module is never called.
    state_convs = {f"{name}.conv1d" for name, m in model.named_modules() if isinstance(m, Mamba)}
    return [name for name, m in model.named_modules()
            if type(m) in kinds and name not in state_convs and not name.endswith(SCAN_PROJECTIONS)]  # fmt: skip


def check_method(method: str) -> None:
    if method not in METHODS:
        raise ConfigError(f"unknown quantization method {method!r}: choose one of {', '.join(METHODS)}")


def engine() -> str:
    """The x86 INT8 engine (fbgemm kernels); set for the process, as torch's quantized ops read it globally."""
    engines = torch.backends.quantized.supported_engines
    name = next((b for b in BACKENDS if b in engines), None)
    if name is None:
        raise ConfigError(f"this torch has no x86 INT8 engine (supported: {', '.join(engines)})")
    if torch.backends.quantized.engine != name:
        logger.info("torch quantized engine: %s", name)
        torch.backends.quantized.engine = name
    return name


def wrap(model: DFN4, method: str, qconfig: Any) -> DFN4:
    """Puts every layer of `quantized_layer_names` inside a QuantizedLayer carrying `qconfig` (in place)."""
    for name in quantized_layer_names(model, method):
        parent, _, leaf = name.rpartition(".")
        owner = model.get_submodule(parent) if parent else model
        wrapped = QuantizedLayer(getattr(owner, leaf))
        wrapped.qconfig = qconfig
        setattr(owner, leaf, wrapped)
    return model


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """torch.ao's deprecation and "observer not run" warnings, expected here, stay out of the log."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"torch\.ao")
        warnings.filterwarnings("ignore", message=r".*(deprecated|TypedStorage|observer).*")
        yield


def quantize_dynamic(model: DFN4) -> DFN4:
    """A copy of `model` whose Linear layers hold INT8 weights (per channel); activations quantized per call."""
    engine()
    spec = {name: tq.per_channel_dynamic_qconfig for name in quantized_layer_names(model, "dynamic")}
    with quiet():
        return tq.quantize_dynamic(copy.deepcopy(model).cpu().eval(), spec, dtype=torch.qint8)


@torch.no_grad()
def quantize_static(model: DFN4, calibration: list[Tensor]) -> DFN4:
    """A copy of `model` with INT8 Linear/Conv weights and activations, observers calibrated on `calibration`.

    Args:
        model: the float model.
        calibration: noisy clips (N,) at the model's rate, whole hops or not.
    """
    backend = engine()
    with quiet():
        net = wrap(copy.deepcopy(model).cpu().eval(), "static", tq.get_default_qconfig(backend))
        tq.prepare(net, inplace=True)
        for clip in calibration:
            net(whole_hops(clip, net.hop_size)[None])
        return tq.convert(net.eval(), inplace=True)


def quantized_structure(model: DFN4, spec: Any, path: str | Path, device: Any = None) -> DFN4:
    """The module structure a quantized checkpoint's weights fit: `model` (float, fresh) quantized by spec["method"].

    Called by `load_model` before it loads the INT8 state dict (static and qat convert to the same modules).

    Raises:
        CheckpointError: an unknown method, a backend this torch lacks, or a device other than the CPU.
    """
    method = spec.get("method") if isinstance(spec, dict) else None
    if method not in METHODS:
        raise CheckpointError(path, f"unknown quantization method {method!r}")
    if device is not None and torch.device(device).type != "cpu":
        raise CheckpointError(path, f"INT8 ({method}) models run on the CPU only, not {device}")
    try:
        backend = engine()
    except ConfigError as err:
        raise CheckpointError(path, str(err)) from err
    if method == "dynamic":
        return quantize_dynamic(model)
    with quiet():
        net = wrap(model.cpu().eval(), "static", tq.get_default_qconfig(backend))
        return tq.convert(tq.prepare(net), inplace=True)


def whole_hops(x: Tensor | np.ndarray, hop: int) -> Tensor:
    """`x` as float32, cut to whole hops (at least one)."""
    x = torch.as_tensor(x, dtype=torch.float32)
    return x[: max(1, x.shape[-1] // hop) * hop]


def is_quantized(model: nn.Module) -> bool:
    """Whether `model` holds INT8 layers (of any method)."""
    return any(isinstance(m, QuantizedLayer) or "quantized" in type(m).__module__ for m in model.modules())

"""The real DNSMOS P.835, differentiable: speechmos's ONNX graph evaluated with torch ops.

`OnnxGraph` is a small interpreter for exactly the plain ops the DNSMOS graphs use (its framing,
learned STFT front end, CNN and dense head are all in the graph; the input is raw 16 kHz samples),
with the float initializers as buffers. `DNSMOSProxy` adds what speechmos does around the graph:
tile a short clip to 9.01 s, score 9.01 s windows 1 s apart, map each raw score through the
P.835 calibration polynomials and average over the windows.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from dfn4core.errors import ConfigError
from dfn4core.losses.pretrained_input import PRETRAINED_SR, package_file, to_pretrained_sr

log = logging.getLogger(__name__)

SPEECHMOS_HINT = "pip install onnx speechmos"
WINDOW_S = 9.01  # speechmos INPUT_LENGTH: the graph takes 144160 samples at 16 kHz
WINDOW_HOP_SIZE = PRETRAINED_SR  # 1 s between scored windows
# speechmos dnsmos.py get_polyfit_val: raw (SIG, BAK, OVRL) -> MOS, highest power first.
P835_POLY: dict[bool, tuple[tuple[float, ...], ...]] = {
    False: (
        (-0.08397278, 1.22083953, 0.0052439),
        (-0.13166888, 1.60915514, -0.39604546),
        (-0.06766283, 1.11546468, 0.04602535),
    ),
    True: (
        (-0.01019296, 0.02751166, 1.19576786, -0.24348726),
        (-0.04976499, 0.44276479, -0.1644611, 0.96883132),
        (-0.00533021, 0.005101, 1.18058466, -0.11236046),
    ),
}
# Sqrt's argument is floored here: sqrt'(0) is infinite, and the DNSMOS graph squares the result and
# floors it at 1e-12 right after, so values below 1e-30 never change the output.
_SQRT_FLOOR = 1e-30
_INT64_MAX = 2**63 - 1


def _attrs(node: Any) -> dict[str, Any]:
    import onnx

    out = {}
    for attr in node.attribute:
        value = onnx.helper.get_attribute_value(attr)
        out[attr.name] = value.decode() if isinstance(value, bytes) else value
    return out


def _spatial_pads(attrs: dict[str, Any], dims: int) -> list[int]:
    """ONNX pads [b1, b2, ..., e1, e2, ...] as F.pad's (last dim first) list; VALID/NOTSET only."""
    auto_pad = attrs.get("auto_pad", "NOTSET")
    if auto_pad not in ("NOTSET", "VALID"):
        raise ConfigError(f"ONNX auto_pad={auto_pad} is not supported")
    pads = list(attrs.get("pads", [0] * 2 * dims)) if auto_pad == "NOTSET" else [0] * 2 * dims
    return [p for d in reversed(range(dims)) for p in (pads[d], pads[d + dims])]


def _conv(x: Tensor, w: Tensor, b: Tensor | None, attrs: dict[str, Any]) -> Tensor:
    dims = w.dim() - 2
    conv = {1: F.conv1d, 2: F.conv2d}.get(dims)
    if conv is None:
        raise ConfigError(f"ONNX Conv with {dims} spatial dims is not supported")
    x = F.pad(x, _spatial_pads(attrs, dims))
    stride, dilation = attrs.get("strides", [1] * dims), attrs.get("dilations", [1] * dims)
    return conv(x, w, b, stride=stride, dilation=dilation, groups=attrs.get("group", 1))


def _max_pool(x: Tensor, attrs: dict[str, Any]) -> Tensor:
    kernel = attrs["kernel_shape"]
    if len(kernel) != 2 or attrs.get("dilations", [1, 1]) != [1, 1] or attrs.get("storage_order", 0):
        raise ConfigError("only 2-D ONNX MaxPool without dilation is supported")
    x = F.pad(x, _spatial_pads(attrs, 2), value=-math.inf)
    return F.max_pool2d(x, kernel, attrs.get("strides", [1, 1]), ceil_mode=bool(attrs.get("ceil_mode", 0)))


def _reshape(x: Tensor, shape: list[int], attrs: dict[str, Any]) -> Tensor:
    if not attrs.get("allowzero", 0):  # 0 means "keep this input dim"
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


def _slice(x: Tensor, starts: list[int], ends: list[int], axes: list[int] | None, steps: list[int] | None) -> Tensor:
    index = [slice(None)] * x.dim()
    for i, axis in enumerate(axes if axes is not None else range(len(starts))):
        step = steps[i] if steps is not None else 1
        if step <= 0:
            raise ConfigError("ONNX Slice with a non-positive step is not supported")
        index[axis] = slice(starts[i], min(ends[i], _INT64_MAX), step)
    return x[tuple(index)]


def _unsqueeze(x: Tensor, axes: list[int]) -> Tensor:
    rank = x.dim() + len(axes)
    for axis in sorted(a % rank for a in axes):
        x = x.unsqueeze(axis)
    return x


def _reduce_max(x: Tensor, axes: list[int] | None, attrs: dict[str, Any]) -> Tensor:
    keep = bool(attrs.get("keepdims", 1))
    for axis in sorted((a % x.dim() for a in (axes or range(x.dim()))), reverse=True):
        x = x.amax(dim=axis, keepdim=keep)
    return x


# Each op: (inputs as tensors or int lists, attributes) -> output. Int64 initializers arrive as lists.
_OPS: dict[str, Callable[[list[Any], dict[str, Any]], Tensor]] = {
    "Add": lambda i, a: i[0] + i[1],
    "Mul": lambda i, a: i[0] * i[1],
    "Div": lambda i, a: i[0] / i[1],
    "Max": lambda i, a: _variadic_max(i),
    "Pow": lambda i, a: torch.pow(i[0], i[1]),
    "Sqrt": lambda i, a: i[0].clamp_min(_SQRT_FLOOR).sqrt(),
    "Log": lambda i, a: torch.log(i[0]),
    "Relu": lambda i, a: F.relu(i[0]),
    "MatMul": lambda i, a: torch.matmul(i[0], i[1]),
    "Transpose": lambda i, a: i[0].permute(*a["perm"]) if "perm" in a else i[0].permute(*reversed(range(i[0].dim()))),
    "Concat": lambda i, a: torch.cat(i, dim=a["axis"]),
    "Reshape": lambda i, a: _reshape(i[0], i[1], a),
    "Slice": lambda i, a: _slice(i[0], i[1], i[2], i[3] if len(i) > 3 else None, i[4] if len(i) > 4 else None),
    "Unsqueeze": lambda i, a: _unsqueeze(i[0], i[1] if len(i) > 1 else a["axes"]),
    "ReduceMax": lambda i, a: _reduce_max(i[0], i[1] if len(i) > 1 else a.get("axes"), a),
    "Conv": lambda i, a: _conv(i[0], i[1], i[2] if len(i) > 2 else None, a),
    "MaxPool": lambda i, a: _max_pool(i[0], a),
}


def _variadic_max(inputs: list[Tensor]) -> Tensor:
    out = inputs[0]
    for x in inputs[1:]:
        out = torch.maximum(out, x)
    return out


class OnnxGraph(nn.Module):
    """An ONNX graph of plain ops (Conv, MatMul, MaxPool, Pow, Log, ...) evaluated with torch ops.

    Float initializers are non-persistent buffers (they follow `.to(device)` and stay out of
    checkpoints); int64 initializers (shapes, slice bounds) are Python constants. A graph using
    an op outside `_OPS` is refused when built, never half-run.

    Args:
        model: an `onnx.ModelProto` with one input.

    Shapes: forward(x) -> list of the graph's outputs, as ONNX defines them.
    """

    def __init__(self, model: Any):
        super().__init__()
        from onnx import numpy_helper

        graph = model.graph
        unsupported = sorted({n.op_type for n in graph.node} - set(_OPS))
        if unsupported:
            raise ConfigError(f"ONNX ops not supported by OnnxGraph: {', '.join(unsupported)}")
        self._tensors: dict[str, str] = {}  # initializer name -> buffer name
        self._consts: dict[str, list[int]] = {}
        for i, init in enumerate(graph.initializer):
            array = numpy_helper.to_array(init)
            if array.dtype.kind in "iu":
                self._consts[init.name] = array.reshape(-1).tolist()
            else:
                self._tensors[init.name] = f"init_{i}"
                self.register_buffer(f"init_{i}", torch.from_numpy(array.copy()).float(), persistent=False)
        known = set(self._tensors) | set(self._consts)
        inputs = [v.name for v in graph.input if v.name not in known]
        if len(inputs) != 1:
            raise ConfigError(f"OnnxGraph takes graphs with one input, got {inputs}")
        self.input_name = inputs[0]
        self.output_names = [v.name for v in graph.output]
        self._nodes = [(n.op_type, list(n.input), list(n.output), _attrs(n)) for n in graph.node]

    @classmethod
    def from_file(cls, path: str | Path) -> OnnxGraph:
        try:
            import onnx
        except ImportError as err:
            raise ConfigError(f"reading ONNX graphs needs the onnx package: `{SPEECHMOS_HINT}`") from err
        return cls(onnx.load(str(path)))

    def _value(self, name: str, values: dict[str, Tensor]) -> Any:
        if name in values:
            return values[name]
        if name in self._tensors:
            return getattr(self, self._tensors[name])
        return self._consts[name]

    def forward(self, x: Tensor) -> list[Tensor]:
        values = {self.input_name: x}
        for op, inputs, outputs, attrs in self._nodes:
            args = [self._value(n, values) for n in inputs if n]
            values[outputs[0]] = _OPS[op](args, attrs)
        return [values[n] for n in self.output_names]


class DNSMOSProxy(nn.Module):
    """DNSMOS P.835 (SIG, BAK, OVRL) of a batch of clips, differentiable, equal to speechmos's score.

    The graph and calibration are those of `speechmos` (`dnsmos_models/sig_bak_ovr.onnx`, or
    `pdnsmos_models/` when personalized), found through the installed package's folder without
    importing it. Input at 48 kHz goes through `Downsample(3)` first (speechmos takes 16 kHz).

    Args:
        input_sr: sample rate of the input, a multiple of 16 kHz.
        personalized: score with the personalized model and its polynomials.
        max_windows: score at most this many windows per clip (None: every window, as speechmos).
        model_path: an explicit ONNX file instead of the one in speechmos.
    Raises:
        ConfigError: onnx or speechmos missing, or a graph with ops the interpreter lacks.

    Shapes: wave (B, N) -> (B, 3) MOS as (SIG, BAK, OVRL).
    """

    def __init__(
        self,
        input_sr: int = 48_000,
        personalized: bool = False,
        max_windows: int | None = None,
        model_path: str | Path | None = None,
    ):
        super().__init__()
        folder = "pdnsmos_models" if personalized else "dnsmos_models"
        if model_path:
            path = Path(model_path)
        else:
            path = package_file("speechmos", f"{folder}/sig_bak_ovr.onnx", SPEECHMOS_HINT)
        self.graph = OnnxGraph.from_file(path)
        self.resample = to_pretrained_sr(input_sr)
        self.max_windows = max_windows
        polys = P835_POLY[personalized]
        self.register_buffer("poly", torch.tensor(polys, dtype=torch.float64).float(), persistent=False)
        log.debug("DNSMOSProxy: %s evaluated with torch ops", path)

    def windows(self, wave16k: Tensor) -> Tensor:
        """speechmos's 9.01 s windows, 1 s apart, of each clip tiled by doubling. (B, N) -> (B, W, 144160)."""
        window_size = round(WINDOW_S * PRETRAINED_SR)
        while wave16k.shape[1] < window_size:
            wave16k = torch.cat((wave16k, wave16k), dim=1)
        count = int(math.floor(wave16k.shape[1] / PRETRAINED_SR) - WINDOW_S) + 1
        if self.max_windows is not None:
            count = min(count, self.max_windows)
        return wave16k.unfold(1, window_size, WINDOW_HOP_SIZE)[:, :count]

    def raw_scores(self, windows: Tensor) -> Tensor:
        """The graph's uncalibrated (SIG, BAK, OVRL). Shapes: (M, 144160) -> (M, 3)."""
        return self.graph(windows)[0]

    def calibrate(self, raw: Tensor) -> Tensor:
        """P.835 polynomials applied per column. Shapes: (..., 3) -> (..., 3)."""
        poly = self.poly.to(raw.dtype)
        out = poly[:, 0].expand_as(raw)
        for k in range(1, poly.shape[1]):  # Horner: no x^0 term, whose gradient is NaN at x = 0
            out = out * raw + poly[:, k]
        return out

    def forward(self, wave: Tensor) -> Tensor:
        if wave.dim() != 2 or wave.shape[1] == 0:
            raise ValueError(f"wave must be (batch, samples), got {tuple(wave.shape)}")
        windows = self.windows(self.resample(wave))
        batch = windows.shape[0]
        mos = self.calibrate(self.raw_scores(rearrange(windows, "b w n -> (b w) n")))  # every window alone
        return rearrange(mos, "(b w) s -> b w s", b=batch).mean(1)  # s: SIG, BAK, OVRL

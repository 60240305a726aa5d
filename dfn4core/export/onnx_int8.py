"""INT8 version of an exported streaming graph: onnxruntime dynamic quantization of the network's weights.

Only the MatMul/Conv weights of the network (encoder and decoders) become INT8, with activations
quantized per call; the STFT and ISTFT matrices, the feature normalisation, the deep filter and every
recurrent state update (Mamba conv and scan, running means, overlap buffers) stay in float, since
8-bit recurrent state is what ruined naive INT8 DeepFilterNet exports.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dfn4core.atomic import write_atomically
from dfn4core.errors import ExportError
from dfn4core.export.runtime import OnnxModel, read_metadata
from dfn4core.metrics.sdr import si_sdr

logger = logging.getLogger(__name__)

QUANTIZED_SCOPES = ("/encoder/", "/erb_decoder/", "/df_decoder/", "/order_predictor/")
QUANTIZED_OPS = ("MatMul", "Gemm", "Conv")
INT8_NAME = "model.int8.onnx"


@dataclass(frozen=True)
class Int8Report:
    """The INT8 graph, both sizes, and its output's SI-SDR against the float graph's."""

    path: Path
    float_bytes: int
    int8_bytes: int
    si_sdr_db: float
    quantized_nodes: int


def quantize_int8(onnx_path: str | Path, audio: np.ndarray, out_path: str | Path | None = None) -> Int8Report:
    """Writes the INT8 version of a streaming graph and compares it with the float graph on `audio`.

    Args:
        onnx_path: the float streaming graph (its model.json beside it).
        audio: (N,) samples at the model's rate to compare the two graphs on.
        out_path: where to write; default model.int8.onnx beside the float graph.
    Returns:
        Paths, sizes, SI-SDR (dB) of the INT8 output against the float output, quantized node count.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    onnx_path = Path(onnx_path)
    out_path = Path(out_path) if out_path is not None else onnx_path.with_name(INT8_NAME)
    graph = onnx.load(str(onnx_path)).graph
    weights = {i.name for i in graph.initializer}
    nodes = [n.name for n in graph.node
             if n.op_type in QUANTIZED_OPS and n.name.startswith(QUANTIZED_SCOPES) and n.input[1] in weights]  # fmt: skip
    if not nodes:
        raise ExportError(f"{onnx_path}: no network MatMul/Conv with constant weights to quantize")
    root, hush = logging.getLogger(), _Hush()
    root.addFilter(hush)  # onnxruntime's quantizer advises "pre-processing" on the root logger every time
    try:
        write_atomically(
            out_path, lambda tmp: quantize_dynamic(onnx_path, tmp, nodes_to_quantize=nodes, weight_type=QuantType.QInt8)
        )
    finally:
        root.removeFilter(hush)
    meta = read_metadata(onnx_path)
    reference, quantized = (_run(OnnxModel(p, meta, threads=1), audio) for p in (onnx_path, out_path))
    report = Int8Report(out_path, onnx_path.stat().st_size, out_path.stat().st_size,
                        si_sdr(reference.ravel(), quantized.ravel(), int(meta["sample_rate"])), len(nodes))  # fmt: skip
    logger.info("INT8 graph %s: %d nodes, SI-SDR %.1f dB vs float", out_path, len(nodes), report.si_sdr_db)
    return report


class _Hush(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def _run(model: OnnxModel, audio: np.ndarray) -> np.ndarray:
    hop = model.hop_size
    x = np.asarray(audio, np.float32).reshape(1, -1)
    x = x[:, : x.shape[1] // hop * hop]
    state, out = model.init_state(), np.empty_like(x)
    for i in range(0, x.shape[1], hop):
        out[:, i : i + hop], state = model.step(np.ascontiguousarray(x[:, i : i + hop]), state)
    return out

"""INT8 version of an exported streaming graph: the network's matmul weights stored in 8 bits.

Every MatMul or Gemm of the network (encoder and decoders, the GRU cells included) whose weight is a
constant 2-D matrix becomes onnxruntime's weight-only `MatMulNBits` (com.microsoft): 8-bit weights
in blocks of `BLOCK` along the input, one float scale per block (symmetric, zero point 128), and
`accuracy_level` 4, which quantizes the activation per block and multiplies in integers. At one
frame per call a hop's time goes into reading the weights (the GRU weights alone are 8 MB in
float), so a quarter of the bytes is most of the speed-up. Convolutions, the grouped linear layers,
the STFT and ISTFT matrices, the feature normalisation, the deep filter and every recurrent state
update (GRU state, Mamba conv and scan, running means, overlap buffers) stay in float: 8-bit
recurrent state is what ruined naive INT8 DeepFilterNet exports.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dfn4core.atomic import write_atomically
from dfn4core.errors import ExportError
from dfn4core.export.runtime import OnnxModel, read_metadata
from dfn4core.metrics.sdr import si_sdr

logger = logging.getLogger(__name__)

QUANTIZED_SCOPES = ("/encoder/", "/erb_decoder/", "/df_decoder/", "/order_predictor/")
QUANTIZED_OPS = ("MatMul", "Gemm")
INT8_NAME = "model.int8.onnx"
BLOCK = 32  # weights per scale, along the matmul's input
ACCURACY_LEVEL = 4  # int8 activations: onnxruntime's fast 8-bit path (level 0 computes in float, ~20x slower)
MS_DOMAIN = "com.microsoft"


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

    onnx_path = Path(onnx_path)
    out_path = Path(out_path) if out_path is not None else onnx_path.with_name(INT8_NAME)
    model = _folded(onnx_path)
    count = quantize_weights(model.graph)
    if not count:
        raise ExportError(f"{onnx_path}: no network MatMul/Gemm with a constant 2-D weight to quantize")
    # onnxruntime's optimizer lists every domain it knows; keep those the nodes use
    used = {n.domain or "" for n in model.graph.node}
    kept = [o for o in model.opset_import if (o.domain or "") in used and o.domain != MS_DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend([*kept, onnx.helper.make_opsetid(MS_DOMAIN, 1)])
    write_atomically(out_path, lambda tmp: onnx.save(model, tmp))
    meta = read_metadata(onnx_path)
    reference, quantized = (_run(OnnxModel(p, meta, threads=1), audio) for p in (onnx_path, out_path))
    report = Int8Report(out_path, onnx_path.stat().st_size, out_path.stat().st_size,
                        si_sdr(reference.ravel(), quantized.ravel(), int(meta["sample_rate"])), count)  # fmt: skip
    logger.info("INT8 graph %s: %d nodes, SI-SDR %.1f dB vs float", out_path, count, report.si_sdr_db)
    return report


def _folded(onnx_path: Path):
    """The graph after onnxruntime's basic, portable optimizations (constant folding, redundant nodes
    removed): slices of a weight (the attention's per-domain projections) become constant matrices
    there, which `quantize_weights` can then store in 8 bits.
    """
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(Path(tmp) / "folded.onnx")
        try:
            ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own untyped errors for bad files
            raise ExportError(f"{onnx_path}: onnxruntime cannot load the graph: {err}") from None
        return onnx.load(options.optimized_model_filepath)


def quantize_weights(graph) -> int:
    """Replaces, in place, the network's MatMul/Gemm nodes with a constant 2-D weight by MatMulNBits.

    A Gemm's constant bias vector becomes MatMulNBits' bias input (any other bias an Add after it);
    Gemms with alpha, beta or transA other than the defaults are left in float. Returns the number
    of nodes replaced.
    """
    from onnx import helper, numpy_helper

    weights = {t.name: t for t in graph.initializer}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    nodes, count = [], 0
    for node in graph.node:
        w = _quantizable_weight(node, weights)
        if w is None:
            nodes.append(node)
            continue
        if node.op_type == "Gemm" and _attr(node, "transB", 0):
            w = w.T
        packed, scales = pack_int8_blocks(w)
        prefix = node.name + "/int8"
        graph.initializer.extend([numpy_helper.from_array(packed, prefix + ".weight"),
                                  numpy_helper.from_array(scales, prefix + ".scales")])  # fmt: skip
        bias = node.input[2] if node.op_type == "Gemm" and len(node.input) > 2 else ""
        inputs = [node.input[0], prefix + ".weight", prefix + ".scales"]
        if bias and _is_vector(weights.get(bias), w.shape[1]):
            inputs += ["", "", prefix + ".bias"]  # no zero points (128), no g_idx, then the bias
            graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(weights[bias]).reshape(-1), prefix + ".bias"))
            uses[bias] -= 1
            bias = ""
        product = prefix + ".product" if bias else node.output[0]
        nodes.append(helper.make_node(
            "MatMulNBits", inputs, [product], name=node.name,
            domain=MS_DOMAIN, K=w.shape[0], N=w.shape[1], bits=8, block_size=BLOCK, accuracy_level=ACCURACY_LEVEL,
        ))  # fmt: skip
        if bias:  # a bias that is not a constant vector of N: added after the product
            nodes.append(helper.make_node("Add", [product, bias], [node.output[0]], name=node.name + "/bias"))
        uses[node.input[1]] -= 1
        count += 1
    del graph.node[:]
    graph.node.extend(nodes)
    unused = [t for t in graph.initializer if uses.get(t.name, 1) == 0]
    for t in unused:
        graph.initializer.remove(t)
    return count


def pack_int8_blocks(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MatMulNBits' 8-bit layout of a (K, N) weight: (N, ceil(K / BLOCK), BLOCK) uint8 and (N * blocks,) scales.

    Symmetric per block (scale = max |w| / 127, zero point 128, the default for 8 bits); the last
    block of a K that BLOCK does not divide is padded with zeros.
    """
    k, n = w.shape
    blocks = -(-k // BLOCK)
    padded = np.zeros((n, blocks * BLOCK), np.float64)
    padded[:, :k] = w.T
    padded = padded.reshape(n, blocks, BLOCK)
    scales = np.abs(padded).max(axis=-1) / 127.0
    scales[scales == 0] = 1.0
    q = np.clip(np.round(padded / scales[..., None]), -127, 127) + 128
    return q.astype(np.uint8), scales.astype(np.float32).reshape(-1)


def _quantizable_weight(node, weights) -> np.ndarray | None:
    """The (K, N) float weight of a network MatMul/Gemm that can become MatMulNBits, else None."""
    from onnx import TensorProto, numpy_helper

    if node.op_type not in QUANTIZED_OPS or not node.name.startswith(QUANTIZED_SCOPES) or len(node.input) < 2:
        return None
    tensor = weights.get(node.input[1])
    if tensor is None or len(tensor.dims) != 2 or tensor.data_type != TensorProto.FLOAT:
        return None
    if node.op_type == "Gemm" and (_attr(node, "alpha", 1.0) != 1.0 or _attr(node, "beta", 1.0) != 1.0
                                   or _attr(node, "transA", 0)):  # fmt: skip
        return None
    return numpy_helper.to_array(tensor)


def _is_vector(tensor, size: int) -> bool:
    """A float initializer holding `size` values in one row ((N,) or (1, N)): MatMulNBits' bias."""
    from onnx import TensorProto

    return (tensor is not None and tensor.data_type == TensorProto.FLOAT and int(np.prod(tensor.dims)) == size
            and all(d == 1 for d in tensor.dims[:-1]))  # fmt: skip


def _attr(node, name: str, default):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _run(model: OnnxModel, audio: np.ndarray) -> np.ndarray:
    hop = model.hop_size
    x = np.asarray(audio, np.float32).reshape(1, -1)
    x = x[:, : x.shape[1] // hop * hop]
    state, out = model.init_state(), np.empty_like(x)
    for i in range(0, x.shape[1], hop):
        out[:, i : i + hop], state = model.step(np.ascontiguousarray(x[:, i : i + hop]), state)
    return out

"""The INT8 graph: network matmul weights in 8 bits, signal path and states in float, close to the float graph."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto

from dfn4core.export.onnx_int8 import BLOCK, QUANTIZED_SCOPES, pack_int8_blocks, quantize_int8, quantize_weights
from dfn4core.export.runtime import load_onnx_model
from dfn4core.synth import noisy_speech


def test_int8_graph_keeps_the_signal_path_float_and_stays_close(tiny_export, tmp_path):
    report = quantize_int8(tiny_export.report.onnx_path, noisy_speech(0.2), tmp_path / "model.int8.onnx")
    assert report.quantized_nodes > 0 and report.int8_bytes > 0 and report.float_bytes > 0
    assert report.si_sdr_db > 20.0
    graph = onnx.load(str(report.path)).graph
    ops = {n.name: n.op_type for n in graph.node}
    assert ops["/MatMul"] == "MatMul"  # the STFT's DFT matmul stays float
    integer = [name for name, op in ops.items() if op == "MatMulNBits"]
    assert len(integer) == report.quantized_nodes and all(name.startswith(QUANTIZED_SCOPES) for name in integer)
    assert {o.domain for o in onnx.load(str(report.path)).opset_import} == {"", "com.microsoft"}
    assert "GRU" not in ops.values()  # the GRU cells are plain matmuls in the step graph, so they are quantized
    assert all(o.type.tensor_type.elem_type == TensorProto.FLOAT for o in graph.output)
    (tmp_path / "model.json").write_text(tiny_export.report.json_path.read_text())
    assert load_onnx_model(report.path).new_enhancer(1).process(np.zeros(960, np.float32)).shape == (1, 960)



def test_packed_blocks_dequantize_to_the_weight_within_half_a_step():
    w = np.random.default_rng(0).standard_normal((70, 5)).astype(np.float32)  # 70: the last block is padded
    packed, scales = pack_int8_blocks(w)
    blocks = -(-70 // BLOCK)
    assert packed.shape == (5, blocks, BLOCK) and packed.dtype == np.uint8 and scales.shape == (5 * blocks,)
    dequantized = ((packed.astype(np.float32) - 128) * scales.reshape(5, blocks, 1)).reshape(5, -1)[:, :70].T
    step = np.repeat(scales.reshape(5, blocks), BLOCK, axis=1)[:, :70].T
    assert np.all(np.abs(dequantized - w) <= step / 2 + 1e-7)
    assert np.all(packed[:, -1, 70 - (blocks - 1) * BLOCK :] == 128)  # padding is zero


def test_quantized_gemm_computes_the_dequantized_product_plus_bias():
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(1)
    w, b = rng.standard_normal((6, 513)).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="/encoder/fc/Gemm", transB=1),
         helper.make_node("Gemm", ["x", "w", "b"], ["z"], name="/dft/Gemm", transB=1)],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 513])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 6]) for n in ("y", "z")],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )  # fmt: skip
    assert quantize_weights(graph) == 1  # only the network's node; the other keeps the float weight
    ops = {n.name: n for n in graph.node}
    assert ops["/encoder/fc/Gemm"].op_type == "MatMulNBits" and len(ops["/encoder/fc/Gemm"].input) == 6  # bias inside
    assert len(graph.node) == 2 and ops["/dft/Gemm"].op_type == "Gemm"
    assert {t.name for t in graph.initializer} >= {"w", "b"}
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    x = rng.standard_normal((1, 513)).astype(np.float32)
    y, z = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(z, x @ w.T + b, rtol=1e-5, atol=1e-4)
    # 8-bit weights, and accuracy level 4 rounds the input to 8 bits per block too: about 1 % off
    error = np.linalg.norm(y - (x @ w.T + b)) / np.linalg.norm(x @ w.T)
    assert 0 < error < 0.03

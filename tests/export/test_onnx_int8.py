"""The INT8 graph: network weights quantized, signal path and states in float, close to the float graph."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto

from dfn4core.export.onnx_int8 import QUANTIZED_SCOPES, quantize_int8
from dfn4core.export.runtime import load_onnx_model
from dfn4core.synth import noisy_speech


def test_int8_graph_keeps_the_signal_path_float_and_stays_close(tiny_export, tmp_path):
    report = quantize_int8(tiny_export.report.onnx_path, noisy_speech(0.2), tmp_path / "model.int8.onnx")
    assert report.quantized_nodes > 0 and report.int8_bytes > 0 and report.float_bytes > 0
    assert report.si_sdr_db > 20.0
    graph = onnx.load(str(report.path)).graph
    ops = {n.name: n.op_type for n in graph.node}
    assert ops["/MatMul"] == "MatMul"  # the STFT's DFT matmul stays float
    integer = [name for name, op in ops.items() if op in ("MatMulInteger", "ConvInteger")]
    assert integer and all(name.startswith(QUANTIZED_SCOPES) for name in integer)
    assert all(o.type.tensor_type.elem_type == TensorProto.FLOAT for o in graph.output)
    (tmp_path / "model.json").write_text(tiny_export.report.json_path.read_text())
    assert load_onnx_model(report.path).new_enhancer(1).process(np.zeros(960, np.float32)).shape == (1, 960)


"""Deployment: the ONNX streaming graph (`onnx.py`, needs torch), its torch-free runtime (`runtime.py`),
its INT8 graph (`onnx_int8.py`), and the `dfn4 quantize` workflow (`torch_int8.py`: INT8 torch models,
whose layers live in `dfn4core.model.quantized`).

This package's own import pulls in neither torch nor onnx, so `dfn4core.export.runtime` runs on a
machine with numpy and onnxruntime only.
"""

from __future__ import annotations

from dfn4core.errors import ExportError

__all__ = ["ExportError"]  # its home is dfn4core.errors; this path stays for existing code

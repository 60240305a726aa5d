"""Deployment: the ONNX streaming graph (`onnx.py`, needs torch), its torch-free runtime (`runtime.py`),
and INT8 torch models (`quantize.py`, `dfn4 quantize`).

This package's own import pulls in neither torch nor onnx, so `dfn4core.export.runtime` runs on a
machine with numpy and onnxruntime only.
"""

from __future__ import annotations

from dfn4core.errors import Dfn4Error


class ExportError(Dfn4Error):
    """An exported graph failed its check against torch, or could not be written or read."""

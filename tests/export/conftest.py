"""One exported tiny model shared by the export tests (exporting takes about a second)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from dfn4core import DFN4, ModelConfig
from dfn4core.export.onnx import ExportReport, export_onnx
from dfn4core.synth import noisy_speech


@dataclass
class Exported:
    model: DFN4
    report: ExportReport

    @property
    def out_dir(self) -> Path:
        return self.report.onnx_path.parent


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """The tiny model's ops are too small to gain from threads; on a busy machine they cost 10x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory) -> Exported:
    torch.manual_seed(0)
    model = DFN4(ModelConfig.tiny()).eval()
    out_dir = tmp_path_factory.mktemp("onnx")
    report = export_onnx(model, out_dir, noisy_speech(0.5), offline=True)
    return Exported(model, report)

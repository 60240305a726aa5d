"""`dfn4 export` and `dfn4 enhance --backend onnx`: a real export and run, options, errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dfn4cli.main import app
from dfn4core import DFN4, ModelConfig, save_model
from dfn4core.export import ExportError
from dfn4core.export import onnx as onnx_export
from dfn4core.io import read_audio, write_audio

from testaudio import make_noisy

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    return save_model(DFN4(ModelConfig.tiny()).eval(), tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def test_export_then_enhance_with_onnx_gives_the_torch_output(tiny_ckpt, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: threads only add overhead on a shared machine
    try:
        write_audio(tmp_path / "check.wav", make_noisy(0.2), 48_000)
        write_audio(tmp_path / "in.wav", make_noisy(0.5, 16_000, channels=2), 16_000)
        export = runner.invoke(app, ["export", "--model", str(tiny_ckpt), "-o", str(tmp_path / "onnx"),
                                     "--check-audio", str(tmp_path / "check.wav")])  # fmt: skip
        assert export.exit_code == 0, export.output
        assert "max abs error" in export.output and (tmp_path / "onnx" / "model.json").is_file()
        for stage in ("loading the model", "tracing the streaming graph", "checking it against torch"):
            assert re.search(rf"^export: {stage} \(\d+\.\d s\)$", export.stderr, re.M), export.stderr
        for backend, model in (("onnx", tmp_path / "onnx" / "model.onnx"), ("torch", tiny_ckpt)):
            args = ["enhance", str(tmp_path / "in.wav"), "-o", str(tmp_path / backend), "--model", str(model),
                    "--backend", backend, "--device", "cpu"]  # fmt: skip
            result = runner.invoke(app, args)
            assert result.exit_code == 0, result.output
    finally:
        torch.set_num_threads(threads)
    (onnx_out, sr), (torch_out, _) = read_audio(tmp_path / "onnx" / "in.wav"), read_audio(tmp_path / "torch" / "in.wav")
    assert sr == 16_000 and onnx_out.shape == (2, 8000)
    np.testing.assert_allclose(onnx_out, torch_out, atol=1e-4, rtol=0)


def test_options_reach_export_onnx(tiny_ckpt, tmp_path, monkeypatch):
    calls = []

    def fake_export(model, out_dir, audio, **kwargs):
        calls.append((out_dir, audio.shape, kwargs))
        raise ExportError("onnxruntime output differs from torch: max abs error 0.5")

    monkeypatch.setattr(onnx_export, "export_onnx", fake_export)
    write_audio(tmp_path / "check.wav", make_noisy(0.1), 48_000)
    args = ["export", "-m", str(tiny_ckpt), "-o", str(tmp_path / "o"), "--opset", "18", "--offline",
            "--check-audio", str(tmp_path / "check.wav")]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: onnxruntime output differs from torch: max abs error 0.5"
    [(out_dir, shape, kwargs)] = calls
    assert callable(kwargs.pop("on_stage"))
    inputs = [tiny_ckpt, tmp_path / "check.wav"]
    expected = {"opset": 18, "offline": True, "int8": False, "overwrite": False, "inputs": inputs}
    assert (out_dir, shape, kwargs) == (tmp_path / "o", (4800,), expected)


def test_without_check_audio_the_generated_signal_is_used(tiny_ckpt, tmp_path, monkeypatch):
    calls = []

    def fake_export(model, out_dir, audio, **kwargs):
        calls.append((audio, kwargs["inputs"]))
        raise ExportError("stop here")

    monkeypatch.setattr(onnx_export, "export_onnx", fake_export)
    result = runner.invoke(app, ["export", "-m", str(tiny_ckpt), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1
    [(audio, inputs)] = calls
    np.testing.assert_array_equal(audio, onnx_export.validation_audio(None, 48_000))  # dfn4core.synth, no file
    assert inputs == [tiny_ckpt]


def test_no_onnx_is_refused(tiny_ckpt, tmp_path):
    result = runner.invoke(app, ["export", "-m", str(tiny_ckpt), "-o", str(tmp_path), "--no-onnx"])
    assert result.exit_code == 2 and "ONNX is the only format" in result.stderr

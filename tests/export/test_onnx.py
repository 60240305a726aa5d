"""The ONNX streaming graph: same samples as torch step by step, a faithful model.json, a check that bites."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from dfn4core import DFN4, ModelConfig
from dfn4core.export import ExportError
from dfn4core.export import onnx as onnx_export
from dfn4core.export.onnx import export_onnx, validate_onnx, validation_audio
from dfn4core.export.runtime import OnnxModel, read_metadata, state_specs
from dfn4core.io import write_audio
from dfn4core.synth import noisy_speech


def test_graph_matches_torch_step_by_step(tiny_export):
    model, graph = tiny_export.model, OnnxModel(tiny_export.report.onnx_path)
    wave = torch.from_numpy(noisy_speech(0.3, seed=1))[None]
    state, onnx_state = model.init_state(1), graph.init_state()
    for hop in wave.split(model.hop_size, dim=1):
        with torch.no_grad():
            expected, state = model.step(hop, state)
        got, onnx_state = graph.step(hop.numpy(), onnx_state)
        np.testing.assert_allclose(got, expected.numpy(), atol=1e-4, rtol=0)
    for name, tensor in state.tensors.items():
        np.testing.assert_allclose(onnx_state[name], tensor.numpy(), atol=1e-4, rtol=0, err_msg=name)


def test_graph_io_are_the_hop_and_every_named_state(tiny_export):
    names = tiny_export.model.init_state(1).names()
    graph = onnx.load(str(tiny_export.report.onnx_path)).graph
    assert [i.name for i in graph.input] == ["hop", *names]
    assert [o.name for o in graph.output] == ["enhanced", *(f"next.{n}" for n in names)]


def test_model_json_describes_every_state_and_its_initial_value(tiny_export):
    model, meta = tiny_export.model, read_metadata(tiny_export.out_dir)
    dsp = model.cfg.dsp
    assert (meta["sample_rate"], meta["hop_size"], meta["latency_size"]) == (dsp.sr, dsp.hop_size, dsp.latency_size)
    init = model.init_state(1).tensors
    specs = state_specs(meta)
    assert [s.name for s in specs] == list(init)
    for spec in specs:
        assert spec.shape == tuple(init[spec.name].shape) and spec.dtype == "float32"
        np.testing.assert_array_equal(spec.init, init[spec.name].numpy())
    assert meta["validation"]["max_abs_error"] < onnx_export.MAX_ABS_ERROR
    assert ModelConfig.from_dict(meta["model_config"]) == model.cfg


def test_offline_graph_matches_forward(tiny_export):
    import onnxruntime as ort

    model = tiny_export.model
    wave = torch.from_numpy(noisy_speech(0.2, seed=2))[None]
    with torch.no_grad():
        expected = model(wave).wave.numpy()
    session = ort.InferenceSession(str(tiny_export.report.offline_path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(["enhanced"], {"wave": wave.numpy()})[0], expected, atol=1e-4, rtol=0)


def test_corrupted_graph_fails_the_check_with_figures(tiny_export, tmp_path):
    graph = onnx.load(str(tiny_export.report.onnx_path))
    weight = max(graph.graph.initializer, key=lambda i: np.prod(i.dims))  # a DFT matrix
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 3.0, weight.name))
    onnx.save(graph, str(tmp_path / "model.onnx"))
    with pytest.raises(ExportError, match=r"max abs error .* SNR of the difference .* dB"):
        validate_onnx(tmp_path / "model.onnx", tiny_export.model, noisy_speech(0.2))


def test_failed_check_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_export, "MAX_ABS_ERROR", 0.0)
    with pytest.raises(ExportError):
        export_onnx(DFN4(ModelConfig.tiny()).eval(), tmp_path, noisy_speech(0.05))
    assert list(tmp_path.iterdir()) == []


def test_validation_audio_reads_the_first_channel_at_the_model_rate(tmp_path):
    stereo = np.stack([noisy_speech(0.5, 16_000), np.zeros(8000, np.float32)])
    write_audio(tmp_path / "a.wav", stereo, 16_000)
    audio = validation_audio(tmp_path / "a.wav", 48_000, seconds=0.25)
    assert audio.shape == (12_000,) and audio.dtype == np.float32 and np.abs(audio).max() > 0.05
    assert validation_audio(None, 48_000, seconds=0.1).shape == (4800,)


def test_too_short_audio_is_refused(tiny_export):
    with pytest.raises(ExportError, match="at least one hop"):
        validate_onnx(tiny_export.report.onnx_path, tiny_export.model, np.zeros(100, np.float32))


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["lite", "full"])
def test_shipped_variants_export_within_tolerance(variant, tmp_path):
    report = export_onnx(DFN4(getattr(ModelConfig, variant)()).eval(), tmp_path, noisy_speech(1.0))
    assert report.agreement.max_abs_error < 1e-4 and report.agreement.snr_db > 60

"""torch INT8 models: each method loads with load_model, runs in enhance and streams, stays close to float."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from dfn4core import DFN4, Enhancer, ModelConfig, enhance, load_model, save_model
from dfn4core.benchmark import BenchmarkSettings
from dfn4core.errors import CheckpointError, ConfigError
from dfn4core.export import ExportError
from dfn4core.export.torch_int8 import (
    QatSettings,
    QuantizedLayer,
    generated_pairs,
    quantize_checkpoint,
    quantize_dynamic,
    quantize_static,
    save_quantized,
)
from dfn4core.metrics import si_sdr

SR = 48_000
FAST = BenchmarkSettings(seconds=0.2, hops=3, warmup_hops=1, repeats=1, warmup_runs=0, memory_process="same")
MIN_SI_SDR_DB = {"dynamic": 40.0, "static": 20.0, "qat": 15.0}  # quantized vs float output


def sensitive_tiny() -> DFN4:
    """The tiny model with its output layers scaled up, so its output depends on every layer (a random
    model's output is mostly the pass-through bias it starts from, which hides a broken quantization)."""
    torch.manual_seed(0)
    model = DFN4(ModelConfig.tiny()).eval()
    with torch.no_grad():
        model.erb_decoder.out.weight.mul_(30)
        model.df_decoder.out.weight.mul_(30)
    return model


@pytest.fixture(scope="module")
def float_model() -> DFN4:
    return sensitive_tiny()


@pytest.fixture(scope="module")
def noisy() -> np.ndarray:
    return generated_pairs(1, 0.5, SR, seed=3)[0][0]


@pytest.fixture(scope="module")
def static_model(float_model) -> DFN4:
    clips = [torch.from_numpy(n) for n, _ in generated_pairs(2, 0.5, SR, seed=1)]
    return quantize_static(float_model, clips)


def test_dynamic_replaces_linear_layers_and_keeps_the_scan_float(float_model, noisy):
    model = quantize_dynamic(float_model)
    mixer = model.encoder.temporal.layers[0].mixer
    assert isinstance(mixer.in_proj, nn.quantized.dynamic.Linear)
    assert isinstance(model.order_predictor.hidden, nn.quantized.dynamic.Linear)
    assert type(mixer.x_proj) is nn.Linear and type(mixer.dt_proj) is nn.Linear  # the scan's decay
    assert not any(type(m) is nn.Linear and n.endswith(("in_proj", "out_proj", "qkv")) for n, m in model.named_modules())
    assert si_sdr(enhance(float_model, noisy, SR), enhance(model, noisy, SR), SR) > MIN_SI_SDR_DB["dynamic"]


def test_static_keeps_state_float_and_streams_like_offline(static_model, float_model, noisy):
    assert isinstance(static_model.erb_decoder.out, QuantizedLayer)
    assert isinstance(static_model.erb_decoder.out.layer, nn.quantized.Conv2d)
    assert type(static_model.encoder.temporal.layers[0].mixer.conv1d) is nn.Conv1d
    state = static_model.init_state(1)
    _, state = static_model.step(torch.from_numpy(noisy[None, :480]), state)
    assert all(t.dtype == torch.float32 and not t.is_quantized for t in state.tensors.values())
    offline = enhance(static_model, noisy, SR)
    streamer = Enhancer(static_model)
    chunks = [streamer.process(torch.from_numpy(noisy[i : i + 700])) for i in range(0, noisy.size, 700)]
    streamed = torch.cat([*chunks, streamer.flush()], dim=1)[0, streamer.latency :].numpy()
    np.testing.assert_allclose(streamed, offline, atol=1e-5, rtol=0)
    assert si_sdr(enhance(float_model, noisy, SR), offline, SR) > MIN_SI_SDR_DB["static"]


def test_dynamic_streaming_differs_from_offline_only_by_its_per_call_scales(float_model, noisy):
    model = quantize_dynamic(float_model)
    offline = enhance(model, noisy, SR)
    streamer = Enhancer(model)
    chunks = [streamer.process(torch.from_numpy(noisy[i : i + 480])) for i in range(0, noisy.size, 480)]
    streamed = torch.cat([*chunks, streamer.flush()], dim=1)[0, streamer.latency :].numpy()
    # Dynamic INT8 takes each call's activation range: one hop per call vs many frames per call.
    np.testing.assert_allclose(streamed, offline, atol=1e-2 * np.abs(offline).max(), rtol=0)
    assert si_sdr(offline, streamed, SR) > MIN_SI_SDR_DB["dynamic"]


def test_save_and_load_give_identical_output(static_model, noisy, tmp_path):
    path = save_quantized(static_model, tmp_path / "static.pt", "static")
    loaded = load_model(path)
    assert isinstance(loaded.erb_decoder.out, QuantizedLayer)
    np.testing.assert_array_equal(enhance(loaded, noisy, SR), enhance(static_model, noisy, SR))


def test_dynamic_checkpoint_report_and_overwrite(float_model, tmp_path):
    ckpt = save_model(float_model, tmp_path / "float.pt")
    out = tmp_path / "int8.pt"
    report = quantize_checkpoint(ckpt, out, "dynamic", valid_items=1, valid_seconds=1.0, rtf_settings=FAST)
    on_disk = json.loads(report.report_path.read_text())
    assert report.report_path == tmp_path / "int8.report.json" and on_disk["method"] == "dynamic"
    assert on_disk["quantized_bytes"] == out.stat().st_size and on_disk["float_bytes"] > 0
    assert set(on_disk["rtf"]) == {"float", "quantized"} and on_disk["rtf"]["quantized"] > 0
    assert on_disk["metrics"]["si_sdr_vs_float"] > MIN_SI_SDR_DB["dynamic"]
    assert {"pesq_vs_float", "si_sdr_float_clean", "si_sdr_quantized_clean", "pesq_quantized_clean"} <= set(on_disk["metrics"])
    loaded = load_model(out)
    assert isinstance(loaded.encoder.lsnr.fc, nn.quantized.dynamic.Linear)
    assert enhance(loaded, np.zeros(1000, np.float32), SR).shape == (1000,)
    with pytest.raises(ExportError, match="exists"):
        quantize_checkpoint(ckpt, out, "dynamic")
    with pytest.raises(ConfigError, match="already quantized"):
        quantize_checkpoint(out, tmp_path / "again.pt", "dynamic", overwrite=True)


def test_qat_fine_tunes_on_data_then_loads(float_model, tmp_path):
    from corpus import corpus_config, write_corpus

    data = corpus_config(write_corpus(tmp_path / "corpus", n_speech=2, seconds=0.6), 2, 1, 0.3)
    ckpt = save_model(float_model, tmp_path / "float.pt")
    report = quantize_checkpoint(ckpt, tmp_path / "qat.pt", "qat", data=data, qat=QatSettings(steps=2, batch_size=2),
                                 valid_items=1, rtf_settings=FAST)  # fmt: skip
    assert report.validation == "1 items of DATA.toml valid split" and "2 QAT steps" in report.calibration
    loaded = load_model(report.path)
    assert isinstance(loaded.erb_decoder.out.layer, nn.quantized.Conv2d)
    noisy = generated_pairs(1, 0.3, SR, seed=4)[0][0]
    assert si_sdr(enhance(float_model, noisy, SR), enhance(loaded, noisy, SR), SR) > MIN_SI_SDR_DB["qat"]


def test_bad_input(float_model, tmp_path):
    ckpt = save_model(float_model, tmp_path / "float.pt")
    with pytest.raises(ConfigError, match="unknown quantization method 'fp8'"):
        quantize_checkpoint(ckpt, tmp_path / "o.pt", "fp8")
    with pytest.raises(ConfigError, match="DATA.toml"):
        quantize_checkpoint(ckpt, tmp_path / "o.pt", "qat")
    with pytest.raises(CheckpointError, match="no such file"):
        quantize_checkpoint(tmp_path / "missing.pt", tmp_path / "o.pt", "dynamic")
    (tmp_path / "corrupt.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        quantize_checkpoint(tmp_path / "corrupt.pt", tmp_path / "o.pt", "dynamic")
    with pytest.raises(ExportError, match="safetensors"):
        save_quantized(quantize_dynamic(float_model), tmp_path / "o.safetensors", "dynamic")

"""DNSMOSProxy == speechmos/onnxruntime DNSMOS P.835, differentiable; OnnxGraph op coverage."""

import importlib.util
import math
import sys
import types

import numpy as np
import pytest
import torch
from testaudio import speech_like

from dfn4core.errors import ConfigError
from dfn4core.losses import DNSMOSProxy, OnnxGraph
from dfn4core.losses.pretrained_input import package_file

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
try:
    MODEL = package_file("speechmos", "dnsmos_models/sig_bak_ovr.onnx", "")
except ConfigError:
    pytest.skip("speechmos (pip install speechmos) is not installed", allow_module_level=True)

ATOL = 1e-4
WINDOW_SIZE = 144_160


@pytest.fixture(scope="module")
def proxy() -> DNSMOSProxy:
    return DNSMOSProxy(input_sr=16_000)


@pytest.fixture(scope="module")
def speechmos_dnsmos():
    """speechmos's own dnsmos.py (onnxruntime), loaded privately with its unused audio imports stubbed."""
    librosa = types.ModuleType("librosa")  # only feeds the P.808 model, whose score is not compared
    librosa.feature = types.SimpleNamespace(
        melspectrogram=lambda y, sr, n_fft, hop_length, n_mels: np.ones((n_mels, 900), np.float32)
    )
    librosa.power_to_db = lambda spec, ref: spec
    requests = types.ModuleType("requests")
    requests.session = None
    saved = {name: sys.modules.get(name) for name in ("librosa", "requests")}
    sys.modules.update(librosa=librosa, requests=requests)
    try:
        spec = importlib.util.spec_from_file_location("_speechmos_dnsmos_reference", MODEL.parents[1] / "dnsmos.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for name, mod in saved.items():
            if mod is None:
                del sys.modules[name]
            else:
                sys.modules[name] = mod
    return module


def _speech_like(n: int, seed: int = 0) -> np.ndarray:
    """(n,) at DNSMOS's 16 kHz: `testaudio.speech_like`."""
    return speech_like(n / 16_000, 16_000, seed)


def test_graph_equals_onnxruntime_on_generated_audio(proxy):
    x = _speech_like(WINDOW_SIZE)[None]
    noise = np.random.default_rng(1).standard_normal(WINDOW_SIZE - WINDOW_SIZE // 2).astype(np.float32)
    x[:, WINDOW_SIZE // 2 :] += 0.1 * noise  # speech, then speech in noise
    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"input_1": x})[0]
    with torch.no_grad():
        got = proxy.raw_scores(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)


def test_score_equals_speechmos_on_real_speech(proxy, speechmos_dnsmos, real_dir):
    soundfile, soxr = pytest.importorskip("soundfile"), pytest.importorskip("soxr")
    audio, sr = soundfile.read(real_dir / "clean_freesound_33711.wav", dtype="float32")
    clip = soxr.resample(audio[: int(4.6 * sr)], sr, 16_000).astype(np.float32)  # tiles to 1 window
    reference = speechmos_dnsmos.DNSMOS(str(MODEL), str(MODEL.parent / "model_v8.onnx"))(clip, 16_000, False)
    with torch.no_grad():
        sig, bak, ovrl = proxy(torch.from_numpy(clip)[None])[0].tolist()
    assert sig == pytest.approx(reference["sig_mos"], abs=ATOL)
    assert bak == pytest.approx(reference["bak_mos"], abs=ATOL)
    assert ovrl == pytest.approx(reference["ovrl_mos"], abs=ATOL)


def test_windows_follow_speechmos(proxy):
    assert proxy.windows(torch.zeros(2, 48_000)).shape == (2, 3, WINDOW_SIZE)  # 3 s -> 12 s tiled -> 3
    assert proxy.windows(torch.zeros(1, 73_600)).shape == (1, 1, WINDOW_SIZE)
    assert proxy.windows(torch.zeros(1, 176_160)).shape == (1, 2, WINDOW_SIZE)
    capped = DNSMOSProxy(input_sr=16_000, max_windows=1, model_path=MODEL)
    assert capped.windows(torch.zeros(1, 48_000)).shape == (1, 1, WINDOW_SIZE)
    with pytest.raises(ValueError):
        proxy(torch.zeros(3))


@pytest.mark.parametrize("personalized", [False, True])
def test_calibration_polynomials_equal_speechmos(speechmos_dnsmos, personalized):
    proxy = DNSMOSProxy(input_sr=16_000, personalized=personalized)
    raw = torch.tensor([[1.0, 2.5, 4.0], [3.2, 1.7, 2.9]])
    ref = np.array([speechmos_dnsmos.DNSMOS.get_polyfit_val(None, *row, personalized) for row in raw.double().numpy()])
    np.testing.assert_allclose(proxy.calibrate(raw).numpy(), ref, atol=1e-5)


def test_gradient_is_finite_through_silence_and_resampler():
    proxy = DNSMOSProxy(input_sr=48_000, max_windows=1)
    wave = torch.from_numpy(np.repeat(_speech_like(WINDOW_SIZE // 2), 3))[None].requires_grad_()
    with torch.no_grad():
        wave[:, :48_000] = 0.0  # digital silence: the graph's sqrt sees exact zeros
    ovrl = proxy(wave)[0, 2]
    ovrl.backward()
    assert math.isfinite(ovrl.item()) and torch.isfinite(wave.grad).all() and wave.grad.abs().sum() > 0


def _graph(nodes, inits, in_shape, out_shape):
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])


def test_interpreter_variants_equal_onnxruntime():
    from onnx import helper

    rng = np.random.default_rng(0)
    inits = {
        "w": rng.standard_normal((3, 2, 3, 2)).astype(np.float32),
        "starts": np.array([1], np.int64),
        "ends": np.array([9223372036854775807], np.int64),
        "shape": np.array([0, -1], np.int64),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 0, 0, 1]),  # asymmetric padding
        helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[1, 1], pads=[0, 0, 1, 1]),
        helper.make_node("Transpose", ["p"], ["t"]),  # no perm: reverse the axes
        helper.make_node("Slice", ["t", "starts", "ends"], ["s"]),  # no axes: leading axes
        helper.make_node("ReduceMax", ["s"], ["r"], axes=[-1], keepdims=1),
        helper.make_node("Unsqueeze", ["r"], ["u"], axes=[-1, 0]),
        helper.make_node("Reshape", ["u", "shape"], ["y"]),
    ]
    model = _graph(nodes, inits, [1, 2, 6, 5], None)
    x = rng.standard_normal((1, 2, 6, 5)).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": x})[0]
    got = OnnxGraph(model)(torch.from_numpy(x))[0]
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-5)


def test_interpreter_refuses_unknown_ops_and_bad_files(tmp_path):
    from onnx import helper

    with pytest.raises(ConfigError, match="Softmax"):
        OnnxGraph(_graph([helper.make_node("Softmax", ["x"], ["y"])], {}, [1, 3], [1, 3]))
    conv = helper.make_node("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER")
    same = _graph([conv], {"w": np.ones((1, 1, 3), np.float32)}, [1, 1, 4], None)
    with pytest.raises(ConfigError, match="SAME_UPPER"):
        OnnxGraph(same)(torch.ones(1, 1, 4))
    two_inputs = _graph([helper.make_node("Add", ["x", "z"], ["y"])], {}, [1], [1])
    two_inputs.graph.input.append(helper.make_tensor_value_info("z", 1, [1]))
    with pytest.raises(ConfigError, match="one input"):
        OnnxGraph(two_inputs)

"""The onnxruntime streaming enhancer: the torch Enhancer's samples and contract, without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dfn4core import CheckpointError, Enhancer
from dfn4core.errors import AudioError
from dfn4core.export.runtime import OnnxEnhancer, load_onnx_model
from dfn4core.io import write_audio
from dfn4core.synth import noisy_speech

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_random_chunks_match_the_torch_enhancer(tiny_export):
    rng = np.random.default_rng(0)
    audio = np.stack([noisy_speech(0.25, seed=3), noisy_speech(0.25, seed=4)])
    reference = Enhancer(tiny_export.model, atten_lim_db=12.0, channels=2)
    streamer = load_onnx_model(tiny_export.out_dir, threads=1).new_enhancer(2, atten_lim_db=12.0)
    assert streamer.latency == reference.latency == tiny_export.model.cfg.dsp.latency_size
    start = 0
    while start < audio.shape[1]:
        chunk = audio[:, start : start + int(rng.integers(1, 1500))]
        start += chunk.shape[1]
        got = streamer.process(chunk)
        assert got.shape == chunk.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, reference.process(torch.from_numpy(chunk)).numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(streamer.flush(), reference.flush().numpy(), atol=1e-4, rtol=0)


def test_a_bound_stream_gives_exactly_the_steps_output_and_states(tiny_export):
    model = load_onnx_model(tiny_export.out_dir, threads=1)
    hops = noisy_speech(0.2, seed=5)[: 19 * model.hop_size].reshape(19, 1, model.hop_size)
    stream, state = model.new_stream(), model.init_state()
    for k, hop in enumerate(hops):
        out, state = model.step(np.ascontiguousarray(hop), state)
        np.testing.assert_array_equal(stream.step(hop), out)
        if k in (0, 1, 18):  # both buffer sets, and the last
            assert all(np.array_equal(stream.state()[name], value) for name, value in state.items())
    stream.reset()  # starts afresh: the first hop again
    first, _ = model.step(np.ascontiguousarray(hops[0]), model.init_state())
    np.testing.assert_array_equal(stream.step(hops[0]), first)
    kept = stream.step(hops[1])
    before = kept.copy()
    stream.step(hops[2])
    np.testing.assert_array_equal(kept, before)  # each output is the caller's own array, not a reused buffer


def test_mono_chunks_and_wrong_shapes(tiny_export):
    streamer = OnnxEnhancer(load_onnx_model(tiny_export.report.onnx_path))
    assert streamer.process(np.zeros(700, np.float32)).shape == (1, 700)
    with pytest.raises(AudioError, match=r"expected \(1, N\)"):
        streamer.process(np.zeros((2, 480), np.float32))


def test_missing_or_foreign_files_are_checkpoint_errors(tiny_export, tmp_path):
    with pytest.raises(CheckpointError, match="no such ONNX graph"):
        load_onnx_model(tmp_path / "model.onnx")
    (tmp_path / "model.onnx").write_bytes(tiny_export.report.onnx_path.read_bytes())
    with pytest.raises(CheckpointError, match="model.json"):
        load_onnx_model(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(CheckpointError, match="not a dfn4 model.json"):
        load_onnx_model(tmp_path)
    (tmp_path / "broken.onnx").write_bytes(b"not a graph")
    (tmp_path / "model.json").write_text(tiny_export.report.json_path.read_text())
    with pytest.raises(CheckpointError, match="cannot load the ONNX graph"):
        load_onnx_model(tmp_path / "broken.onnx")


def test_the_offline_graph_is_refused_with_what_streaming_runs(tiny_export):
    with pytest.raises(CheckpointError, match=r"runs the streaming graph model.onnx, not model_offline.onnx"):
        load_onnx_model(tiny_export.report.offline_path)


def test_onnx_backend_never_imports_torch(tiny_export, tmp_path):
    write_audio(tmp_path / "in.wav", noisy_speech(0.2, 16_000), 16_000)
    argv = ["enhance", str(tmp_path / "in.wav"), "-o", str(tmp_path / "out"), "--backend", "onnx",
            "--model", str(tiny_export.report.onnx_path), "--threads", "1"]  # fmt: skip
    code = (
        "import sys; from dfn4cli.main import app; app(sys.argv[1:], standalone_mode=False); "
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))[:5]"
    )
    subprocess.run([sys.executable, "-c", code, *argv], check=True, cwd=REPO_ROOT, capture_output=True)
    assert (tmp_path / "out" / "in.wav").is_file()


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda m: m.pop("hop_size"), "hop_size missing or not a positive integer (None)"),
        (lambda m: m["states"][0].update(shape=[100_000, 100_000, 100_000]), "holds 1000000000000000 values"),
        (lambda m: m["states"][0].update(shape="big"), "shape must be a list of sizes, got 'big'"),
        (lambda m: m["states"][0].update(init=[0.0]), 'init must be "zeros" or'),
    ],
)
def test_malformed_model_json_is_refused_before_anything_is_built(tiny_export, tmp_path, damage, message):
    meta = json.loads(tiny_export.report.json_path.read_text())
    damage(meta)
    (tmp_path / "model.onnx").write_bytes(tiny_export.report.onnx_path.read_bytes())
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="malformed model.json: ") as err:
        load_onnx_model(tmp_path)
    assert message in str(err.value)

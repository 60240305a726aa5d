"""File-level enhancement: output planning, length and rate, alignment, safety of inputs and outputs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch

from dfn4core import files, io
from dfn4core.errors import AudioError, ConfigError
from dfn4core.files import FileFailure, FileResult, enhance_file, enhance_files, out_frames, plan_outputs
from dfn4core.io import audio_info, read_audio, resample, write_audio

from testaudio import make_noisy


class DelayLine:
    """Stands in for Enhancer: returns its input `latency` samples late, so enhance_file must give the input back."""

    latency = 1920

    def __init__(self, model, atten_lim_db=None, channels=1):
        self.buf = torch.zeros(channels, self.latency)

    def process(self, chunk):
        x = torch.cat([self.buf, torch.as_tensor(chunk)], dim=1)
        out, self.buf = x[:, : x.shape[1] - self.latency], x[:, x.shape[1] - self.latency :]
        return out

    def flush(self):
        out, self.buf = self.buf, torch.zeros_like(self.buf)
        return out


class NanMaker(DelayLine):
    """An Enhancer gone wrong: its output holds NaN."""

    def process(self, chunk):
        return torch.full_like(super().process(chunk), float("nan"))


def fake_model(make_enhancer) -> files.TorchBackend:
    """A 48 kHz torch model whose streaming enhancer is `make_enhancer` (a fake Enhancer)."""
    model = torch.nn.Linear(1, 1)
    model.cfg = SimpleNamespace(dsp=SimpleNamespace(sr=48000))
    return files.TorchBackend(model, make_enhancer=make_enhancer)


@pytest.fixture
def identity_model():
    return fake_model(DelayLine)


def test_plan_outputs_recursion_and_suffix(tmp_path):
    src = tmp_path / "in"
    for rel in ["a.wav", "b.flac", "notes.txt", ".hidden.wav", "sub/c.wav", "sub/deep/d.ogg"]:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).touch()
    out = tmp_path / "out"
    flat = plan_outputs([src], out, suffix="_enh")
    assert flat == [(src / "a.wav", out / "a_enh.wav"), (src / "b.flac", out / "b_enh.flac")]
    deep = plan_outputs([src], out, recursive=True)
    assert [o.relative_to(out).as_posix() for _, o in deep] == ["a.wav", "b.flac", "sub/c.wav", "sub/deep/d.ogg"]
    single = plan_outputs([src / "notes.txt", src / "sub" / "c.wav"], out)
    assert single == [(src / "notes.txt", out / "notes.txt"), (src / "sub" / "c.wav", out / "c.wav")]


def test_plan_outputs_skips_earlier_outputs_and_refuses_clashes(tmp_path):
    (tmp_path / "clean").mkdir()
    (tmp_path / "a.wav").touch()
    (tmp_path / "clean" / "a.wav").touch()
    planned = plan_outputs([tmp_path], tmp_path / "clean", recursive=True)
    assert planned == [(tmp_path / "a.wav", tmp_path / "clean" / "a.wav")]
    with pytest.raises(AudioError, match="no such file or folder") as err:
        plan_outputs([tmp_path / "missing.wav"], tmp_path / "out")
    assert err.value.path == tmp_path / "missing.wav"
    with pytest.raises(AudioError, match="written twice"):
        plan_outputs([tmp_path / "a.wav", tmp_path / "clean" / "a.wav"], tmp_path / "out")


@pytest.mark.parametrize("sr, channels", [(8000, 1), (16000, 1), (48000, 1), (192000, 1), (48000, 8)])
def test_output_has_input_length_rate_and_format(tiny_model, tmp_path, sr, channels):
    frames = int(0.3 * sr) + 7
    write_audio(tmp_path / "in.flac", make_noisy(frames / sr, sr, channels), sr)
    result = enhance_file(tiny_model, tmp_path / "in.flac", tmp_path / "out.flac")
    info = audio_info(tmp_path / "out.flac")
    assert (info.sr, info.channels, info.frames, info.format, info.subtype) == (sr, channels, frames, "FLAC", "PCM_16")
    assert isinstance(result, FileResult) and result.duration_s == pytest.approx(frames / sr) and result.rtf > 0
    assert np.isfinite(read_audio(tmp_path / "out.flac")[0]).all()


@pytest.mark.parametrize("sr_in, sr_out", [(16000, 48000), (44100, 8000), (48000, 22050)])
def test_sr_out_sets_rate_and_keeps_duration(tiny_model, tmp_path, sr_in, sr_out):
    frames = int(0.25 * sr_in) + 3
    write_audio(tmp_path / "in.wav", make_noisy(frames / sr_in, sr_in, 2), sr_in)
    enhance_file(tiny_model, tmp_path / "in.wav", tmp_path / "out.wav", sr_out=sr_out)
    info = audio_info(tmp_path / "out.wav")
    assert info.sr == sr_out and info.frames == out_frames(frames, sr_in, sr_out) == round(frames * sr_out / sr_in)


@pytest.mark.parametrize("sr", [48000, 16000])
def test_output_lines_up_with_input(identity_model, tmp_path, sr):
    x = make_noisy((sr + 123) / sr, sr, 2)
    write_audio(tmp_path / "in.wav", x, sr, subtype="FLOAT")
    enhance_file(identity_model, tmp_path / "in.wav", tmp_path / "out.wav", block_s=0.07)
    y, _ = read_audio(tmp_path / "out.wav")
    assert y.shape == x.shape
    if sr == 48000:
        np.testing.assert_array_equal(y, x)
    else:  # resampled to 48 kHz and back: what one-shot resampling there and back gives
        np.testing.assert_allclose(y, resample(resample(x, sr, 48000), 48000, sr), atol=1e-5)


def test_block_size_does_not_change_output(tiny_model, tmp_path):
    write_audio(tmp_path / "in.wav", make_noisy(1.5, 16000), 16000, subtype="FLOAT")
    enhance_file(tiny_model, tmp_path / "in.wav", tmp_path / "a.wav", block_s=10.0)
    enhance_file(tiny_model, tmp_path / "in.wav", tmp_path / "b.wav", block_s=0.13)
    np.testing.assert_allclose(read_audio(tmp_path / "b.wav")[0], read_audio(tmp_path / "a.wav")[0], atol=1e-5)


def test_silence_gives_near_silence(tiny_model, tmp_path):
    write_audio(tmp_path / "in.wav", np.zeros((2, 24000), np.float32), 48000, subtype="FLOAT")
    enhance_file(tiny_model, tmp_path / "in.wav", tmp_path / "out.wav")
    y, _ = read_audio(tmp_path / "out.wav")
    assert y.shape == (2, 24000) and np.abs(y).max() < 1e-3


def test_nan_input_fails_and_writes_nothing(tiny_model, tmp_path):
    x = make_noisy(1.0, 16000)
    x[0, 9000] = np.nan
    sf.write(tmp_path / "nan.wav", x.T, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite") as err:
        enhance_file(tiny_model, tmp_path / "nan.wav", tmp_path / "out" / "nan.wav", block_s=0.1)
    assert err.value.path == tmp_path / "nan.wav"
    assert not (tmp_path / "out" / "nan.wav").exists() and list((tmp_path / "out").iterdir()) == []


def test_input_is_never_overwritten(tiny_model, tmp_path):
    write_audio(tmp_path / "in.wav", make_noisy(0.5, 16000), 16000)
    before = (tmp_path / "in.wav").read_bytes()
    for target in (tmp_path / "in.wav", tmp_path / "." / "sub" / ".." / "in.wav"):
        with pytest.raises(AudioError, match="is the input file"):
            enhance_file(tiny_model, tmp_path / "in.wav", target, overwrite=True)
    assert (tmp_path / "in.wav").read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]


def test_existing_output_is_kept_without_overwrite(tiny_model, tmp_path):
    write_audio(tmp_path / "in.wav", make_noisy(0.5, 16000), 16000)
    (tmp_path / "out.wav").write_bytes(b"precious")
    with pytest.raises(AudioError, match=r"exists \(use --overwrite\)") as err:
        enhance_file(tiny_model, tmp_path / "in.wav", tmp_path / "out.wav")
    assert err.value.path == tmp_path / "out.wav" and (tmp_path / "out.wav").read_bytes() == b"precious"
    enhance_file(tiny_model, tmp_path / "in.wav", tmp_path / "out.wav", overwrite=True)
    assert audio_info(tmp_path / "out.wav").frames == 8000


def test_settled_outputs_are_what_enhance_files_would_report_without_audio(identity_model, tmp_path):
    for name in ("a", "b", "c", "d"):
        write_audio(tmp_path / "in" / f"{name}.wav", np.zeros(480, np.float32), 16000)
    write_audio(tmp_path / "out" / "b.wav", np.zeros(480, np.float32), 16000)
    (tmp_path / "out" / "d.wav").mkdir()
    pairs = [(tmp_path / "in" / "a.wav", tmp_path / "in" / "a.wav"), (tmp_path / "in" / "b.wav", tmp_path / "out" / "b.wav"),
             (tmp_path / "in" / "d.wav", tmp_path / "out" / "d.wav"), (tmp_path / "in" / "c.wav", tmp_path / "out" / "c.wav")]  # fmt: skip
    settled = files.settled_outputs(pairs)
    assert [r.status for r in settled] == ["failed", "skipped", "failed"]  # the input itself, kept, a folder
    assert settled == files.enhance_files(identity_model, pairs)[:3]
    assert [(r.in_path.name, r.status) for r in files.settled_outputs(pairs, overwrite=True)] == [
        ("a.wav", "failed"), ("d.wav", "failed")]  # fmt: skip


def test_progress_reaches_total(identity_model, tmp_path):
    write_audio(tmp_path / "in.wav", make_noisy(0.625, 16000), 16000)
    calls = []
    progress = lambda done, total: calls.append((done, total))  # noqa: E731
    enhance_file(identity_model, tmp_path / "in.wav", tmp_path / "out.wav", block_s=0.1, on_progress=progress)
    assert calls[-1] == (10_000, 10_000) and len(calls) == 7
    assert all(a[0] < b[0] for a, b in zip(calls, calls[1:]))


def test_unwritable_format_falls_back_to_wav(identity_model, tmp_path):
    write_audio(tmp_path / "in.mp3", make_noisy(0.1, 48000), 48000)
    result = enhance_file(identity_model, tmp_path / "in.mp3", tmp_path / "out.mp3", sr_out=192000)
    assert result.out_path == tmp_path / "out.wav" and audio_info(result.out_path).format == "WAV"


def test_one_failure_does_not_stop_the_others(identity_model, tmp_path):
    for name in ("a", "c"):
        write_audio(tmp_path / f"{name}.wav", make_noisy(0.25, 16000), 16000)
    (tmp_path / "b.wav").write_bytes(b"garbage" * 100)
    pairs = plan_outputs([tmp_path], tmp_path / "out")
    started, ended = [], []
    results = enhance_files(
        identity_model,
        pairs,
        on_file_start=lambda path, info: started.append(path.name),
        on_file_end=ended.append,
        sr_out=8000,
    )
    assert [type(r) for r in results] == [FileResult, FileFailure, FileResult] and ended == results
    assert started == ["a.wav", "c.wav"]
    assert results[1].in_path == tmp_path / "b.wav" and "not an audio file or corrupt" in results[1].reason
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.wav", "c.wav"]
    assert audio_info(tmp_path / "out" / "a.wav").sr == 8000


def test_bad_options_are_config_errors(identity_model, tmp_path):
    write_audio(tmp_path / "in.wav", make_noisy(0.1, 16000), 16000)
    for opts in ({"block_s": 0}, {"sr_out": -8000}, {"atten_lim_db": -3.0}):
        with pytest.raises(ConfigError):
            enhance_file(identity_model, tmp_path / "in.wav", tmp_path / "out.wav", **opts)
    (tmp_path / "out.wav").mkdir()
    with pytest.raises(AudioError, match="is a folder"):
        enhance_file(identity_model, tmp_path / "in.wav", tmp_path / "out.wav")
    assert plan_outputs([tmp_path / "out.wav"], tmp_path / "x") == []


def test_non_finite_enhancement_is_refused(tmp_path):
    write_audio(tmp_path / "in.wav", make_noisy(1.0, 48000), 48000)
    with pytest.raises(AudioError, match="enhancement produced NaN"):
        enhance_file(fake_model(NanMaker), tmp_path / "in.wav", tmp_path / "out.wav")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]


def test_unexpected_errors_become_failures(tmp_path):
    write_audio(tmp_path / "in.wav", make_noisy(0.1, 16000), 16000)

    def explode(*args, **kwargs):
        raise RuntimeError("out of memory")

    [failure] = enhance_files(fake_model(explode), [(tmp_path / "in.wav", tmp_path / "out.wav")])
    assert failure.reason == "unexpected error: RuntimeError: out of memory"


class ChunkRecorder:
    """A Backend whose enhancer passes audio through and records the shape of every chunk it is given."""

    sr, latency = 16_000, 0

    def __init__(self):
        self.shapes: list[tuple[int, int]] = []

    def new_enhancer(self, channels, atten_lim_db):
        return self

    def process(self, chunk):
        self.shapes.append(chunk.shape)
        return chunk

    def flush(self):
        return np.zeros((self.shapes[-1][0], 0), np.float32)


def test_many_channels_are_enhanced_in_bounded_blocks(tmp_path):
    write_audio(tmp_path / "in.wav", make_noisy(1.0, 16_000, 64), 16_000, subtype="FLOAT")
    backend = ChunkRecorder()
    enhance_file(backend, tmp_path / "in.wav", tmp_path / "out.wav", block_s=1.0)
    bound = io.MAX_BLOCK_CHANNELS * 16_000  # samples of one block: 1 s of MAX_BLOCK_CHANNELS channels
    assert max(c * n for c, n in backend.shapes) <= bound and all(c == 64 for c, _ in backend.shapes)
    out, _ = read_audio(tmp_path / "out.wav")
    np.testing.assert_array_equal(out, read_audio(tmp_path / "in.wav")[0])  # shorter blocks, same samples


def test_existing_outputs_are_skipped_but_a_folder_in_the_way_fails(identity_model, tmp_path):
    for name in ("a", "b"):
        write_audio(tmp_path / "in" / f"{name}.wav", make_noisy(0.1, 16000), 16000)
    (tmp_path / "out" / "b.wav").mkdir(parents=True)
    (tmp_path / "out" / "a.wav").write_bytes(b"finished earlier")
    results = enhance_files(identity_model, plan_outputs([tmp_path / "in"], tmp_path / "out"))
    assert [r.status for r in results] == ["skipped", "failed"] and "is a folder" in results[1].reason
    assert (tmp_path / "out" / "a.wav").read_bytes() == b"finished earlier"
    forced = enhance_files(identity_model, [(tmp_path / "in" / "a.wav", tmp_path / "out" / "a.wav")], overwrite=True)
    assert forced[0].status == "ok" and audio_info(tmp_path / "out" / "a.wav").frames == 1600


def test_plan_outputs_gives_final_paths_and_refuses_inputs_as_outputs(tmp_path):
    for name in ("a.mp3", "a_x.wav", "b.wav"):
        write_audio(tmp_path / name, make_noisy(0.1, 48000), 48000)
    planned = plan_outputs([tmp_path / "a.mp3", tmp_path / "b.wav"], tmp_path / "out", suffix="_x", sr_out=96000)
    assert planned == [(tmp_path / "a.mp3", tmp_path / "out" / "a_x.wav"), (tmp_path / "b.wav", tmp_path / "out" / "b_x.wav")]
    with pytest.raises(AudioError, match="is an input and would be the output of") as err:
        plan_outputs([tmp_path / "a.mp3", tmp_path / "a_x.wav"], tmp_path, suffix="_x", sr_out=96000)
    assert err.value.path == tmp_path / "a_x.wav"
    found = plan_outputs([tmp_path], tmp_path, suffix="_x", sr_out=96000)  # a_x.wav: a.mp3's output, not an input
    assert [i.name for i, _ in found] == ["a.mp3", "b.wav"]

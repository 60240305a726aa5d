"""Audio I/O: round trips, clear errors, atomic writing, resampling."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from dfn4core.errors import AudioError
from dfn4core.io import (
    AudioInfo,
    AudioWriter,
    StreamResampler,
    audio_info,
    check_finite,
    iter_blocks,
    output_format,
    read_audio,
    resample,
    write_audio,
)


def noise(channels: int, frames: int, seed: int = 0) -> np.ndarray:
    return (0.3 * np.random.default_rng(seed).standard_normal((channels, frames))).clip(-1, 1).astype(np.float32)


@pytest.mark.parametrize("ext", ["wav", "flac"])
@pytest.mark.parametrize("sr", [8000, 44100, 48000, 96000])
@pytest.mark.parametrize("channels", [1, 8])
def test_round_trip(tmp_path, ext, sr, channels):
    x = noise(channels, sr // 10)
    path = tmp_path / f"x.{ext}"
    write_audio(path, x, sr)
    y, sr_read = read_audio(path)
    assert sr_read == sr and y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, x, atol=1 / 2**15)
    info = audio_info(path)
    assert (info.sr, info.channels, info.frames, info.format) == (sr, channels, sr // 10, ext.upper())
    assert info.duration_s == pytest.approx(0.1)


def test_float_wav_is_exact(tmp_path):
    x = noise(2, 1000)
    write_audio(tmp_path / "x.wav", x, 16000, subtype="FLOAT")
    assert audio_info(tmp_path / "x.wav").subtype == "FLOAT"
    np.testing.assert_array_equal(read_audio(tmp_path / "x.wav")[0], x)


def test_iter_blocks_streams_the_whole_file(tmp_path):
    x = noise(3, 10_001)
    write_audio(tmp_path / "x.wav", x, 16000, subtype="FLOAT")
    blocks = list(iter_blocks(tmp_path / "x.wav", 4096))
    assert [b.shape for b in blocks] == [(3, 4096), (3, 4096), (3, 1809)]
    np.testing.assert_array_equal(np.concatenate(blocks, axis=1), x)


def make_bad(tmp_path, kind: str):
    path = tmp_path / f"{kind}.wav"
    if kind == "empty":
        path.touch()
    elif kind == "noframes":
        sf.write(path, np.zeros((0, 1)), 16000)
    elif kind == "corrupt":
        path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(256)))
    elif kind == "text":
        path = tmp_path / "notes.txt"
        path.write_text("not audio at all\n" * 20)
    elif kind == "folder":
        path.mkdir()
    return path


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("missing", "no such file"),
        ("empty", "empty file"),
        ("noframes", "empty file"),
        ("corrupt", "not an audio file or corrupt"),
        ("text", "not an audio file or corrupt"),
        ("folder", "is a folder"),
    ],
)
def test_unreadable_files_name_the_file_and_reason(tmp_path, kind, reason):
    path = make_bad(tmp_path, kind)
    for read in (audio_info, read_audio, lambda p: list(iter_blocks(p, 100))):
        with pytest.raises(AudioError) as err:
            read(path)
        assert err.value.path == path and reason in err.value.reason
        assert path.name in str(err.value) and "\n" not in str(err.value)


def test_nan_file_is_refused(tmp_path):
    x = noise(1, 1000)
    x[0, 500] = np.nan
    sf.write(tmp_path / "nan.wav", x.T, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite"):
        read_audio(tmp_path / "nan.wav")
    with pytest.raises(AudioError, match="NaN or infinite"):
        list(iter_blocks(tmp_path / "nan.wav", 256))
    with pytest.raises(AudioError, match="x.wav: contains NaN"):
        check_finite(np.array([0.0, np.inf]), "x.wav")


def test_writer_error_leaves_nothing_and_keeps_existing_target(tmp_path):
    target = tmp_path / "out.wav"
    with pytest.raises(RuntimeError):
        with AudioWriter(target, 16000, 1) as w:
            w.write(noise(1, 100))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    old = noise(1, 300, seed=1)
    write_audio(target, old, 16000, subtype="FLOAT")
    with pytest.raises(RuntimeError):
        with AudioWriter(target, 16000, 1, subtype="FLOAT") as w:
            w.write(noise(1, 100))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == [target]
    np.testing.assert_array_equal(read_audio(target)[0], old)


def test_writer_creates_folders_and_clips_integer_pcm(tmp_path):
    target = tmp_path / "a" / "b" / "out.flac"
    with AudioWriter(target, 8000, 2, subtype="PCM_16") as w:
        w.write(np.full((2, 10), 2.0, np.float32))
        w.write(np.full((2, 10), -3.0, np.float32))
    y, _ = read_audio(target)
    assert w.frames == 20 and y.max() <= 1.0 and y[:, :10].min() > 0.999 and y[:, 10:].max() == -1.0
    assert [p.name for p in target.parent.iterdir()] == ["out.flac"]


def test_writer_rejects_unknown_extension_and_wrong_shape(tmp_path):
    with pytest.raises(AudioError, match="unknown audio file extension"):
        AudioWriter(tmp_path / "x.xyz", 16000, 1)
    with pytest.raises(ValueError), AudioWriter(tmp_path / "x.wav", 16000, 2) as w:
        w.write(np.zeros((3, 10), np.float32))
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize(
    "sr_in, sr_out", [(16000, 48000), (48000, 16000), (44100, 48000), (192000, 48000), (48000, 22050)]
)
def test_stream_resampler_matches_one_shot(sr_in, sr_out):
    x = noise(2, sr_in // 5)
    one_shot = resample(x, sr_in, sr_out)
    stream = StreamResampler(sr_in, sr_out, 2)
    parts = [stream.process(x[:, i : i + 1237]) for i in range(0, x.shape[1], 1237)] + [stream.flush()]
    streamed = np.concatenate(parts, axis=1)
    assert one_shot.shape == streamed.shape == (2, round(x.shape[1] * sr_out / sr_in))
    np.testing.assert_allclose(streamed, one_shot, atol=1e-5)


def test_resample_keeps_layout_and_identity():
    x = noise(1, 1600)[0]
    assert resample(x, 16000, 8000).shape == (800,)
    assert resample(x[None], 16000, 48000).shape == (1, 4800)
    np.testing.assert_array_equal(resample(x, 16000, 16000), x)
    t = np.arange(16000) / 16000
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    back = resample(resample(tone, 16000, 48000), 48000, 16000)
    np.testing.assert_allclose(back[1000:-1000], tone[1000:-1000], atol=1e-3)


def test_output_format_keeps_input_when_writable_else_falls_back():
    flac = AudioInfo(48000, 2, 100, "FLAC", "PCM_24", 0.0)
    assert output_format(flac, 48000, 2) == ("FLAC", "PCM_24")
    mp3 = AudioInfo(48000, 1, 100, "MP3", "MPEG_LAYER_III", 0.0)
    assert output_format(mp3, 192000, 1) == ("WAV", "PCM_16")
    float_caf = AudioInfo(48000, 1, 100, "CAF", "FLOAT", 0.0)
    assert output_format(float_caf, 96000, 1) == ("CAF", "FLOAT")
    opus = AudioInfo(48000, 1, 100, "OGG", "OPUS", 0.0)
    assert output_format(opus, 44100, 1) == ("OGG", "VORBIS")


def test_writer_refuses_what_it_cannot_write(tmp_path):
    with pytest.raises(AudioError, match=r"cannot write MP3/MPEG_LAYER_III at 192000 Hz \(.*sample rates"):
        AudioWriter(tmp_path / "x.mp3", 192000, 1).__enter__()
    (tmp_path / "dir.wav").mkdir()
    with pytest.raises(AudioError, match="is a folder"):
        AudioWriter(tmp_path / "dir.wav", 16000, 1).__enter__()
    assert [p.name for p in tmp_path.iterdir()] == ["dir.wav"]
    with pytest.raises(ValueError, match="block_frames"):
        next(iter_blocks(tmp_path / "x.wav", 0))

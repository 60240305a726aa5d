import numpy as np
import pytest
import torch

from dfn4core import AudioError, ConfigError, Enhancer, enhance
from dfn4core.dsp.attenuation import atten_lim_mix

from testaudio import make_noisy


def test_random_chunks_equal_offline(tiny_model, noisy_48k):
    offline = enhance(tiny_model, noisy_48k, 48_000)
    enhancer = Enhancer(tiny_model)
    sizes = torch.randint(1, 1500, (200,), generator=torch.Generator().manual_seed(1)).tolist()
    parts, pos = [], 0
    for size in sizes:
        if pos >= noisy_48k.shape[1]:
            break
        chunk = noisy_48k[:, pos : pos + size]
        out = enhancer.process(chunk)
        assert out.shape == chunk.shape  # as many samples out as in
        parts.append(out)
        pos += size
    parts.append(enhancer.flush())
    streamed = torch.cat(parts, dim=1)[:, enhancer.latency :]
    torch.testing.assert_close(streamed, offline, atol=1e-5, rtol=0)


def test_offline_output_is_aligned_with_input(tiny_model, noisy_48k):
    """With atten_lim_db = 0 the output is the input itself: proves the delay is compensated."""
    out = enhance(tiny_model, noisy_48k, 48_000, atten_lim_db=0.0)
    torch.testing.assert_close(out, noisy_48k, atol=1e-6, rtol=0)


def test_attenuation_limit_mixes_the_aligned_input(tiny_model, noisy_48k):
    wet = enhance(tiny_model, noisy_48k, 48_000)
    limited = enhance(tiny_model, noisy_48k, 48_000, atten_lim_db=6.0)
    mix = atten_lim_mix(6.0)
    torch.testing.assert_close(limited, (1 - mix) * wet + mix * noisy_48k, atol=1e-5, rtol=0)


def test_latency_is_40_ms(tiny_model):
    assert Enhancer(tiny_model).latency == 1920


@pytest.mark.parametrize("sr", [8_000, 16_000, 44_100, 192_000])
def test_other_rates_keep_shape_and_type(tiny_model, sr):
    audio = make_noisy(0.3, sr=sr, channels=2)
    out = enhance(tiny_model, audio, sr)
    assert isinstance(out, np.ndarray) and out.shape == audio.shape and np.isfinite(out).all()


def test_channels_are_independent(tiny_model):
    audio = make_noisy(0.3, channels=3)
    together = enhance(tiny_model, audio, 48_000)
    alone = enhance(tiny_model, audio[1], 48_000)
    assert alone.shape == audio[1].shape
    np.testing.assert_allclose(together[1], alone, atol=1e-5)


def test_multichannel_enhancer_rejects_wrong_channel_count(tiny_model):
    with pytest.raises(AudioError, match=r"\(2, N\)"):
        Enhancer(tiny_model, channels=2).process(torch.zeros(3, 100))


@pytest.mark.parametrize(
    "audio,match",
    [
        (np.zeros(0, np.float32), "empty"),
        (np.array([0.0, np.nan, 0.1], np.float32), "NaN"),
        (np.array([0.0, np.inf], np.float32), "NaN or infinite"),
        (np.zeros((2, 2, 10), np.float32), "shape"),
    ],
)
def test_bad_audio_is_a_clear_error(tiny_model, audio, match):
    with pytest.raises(AudioError, match=match):
        enhance(tiny_model, audio, 48_000)


def test_bad_rate_and_limit(tiny_model):
    with pytest.raises(AudioError, match="sample rate"):
        enhance(tiny_model, np.zeros(100, np.float32), 0)
    with pytest.raises(ConfigError, match="atten_lim_db"):
        Enhancer(tiny_model, atten_lim_db=-3)


def test_real_noisy_recording(tiny_model, real_dir):
    import soundfile as sf

    audio, sr = sf.read(real_dir / "noisy_snr0.wav", dtype="float32")
    out = enhance(tiny_model, audio[: sr * 2], sr)
    assert out.shape == (sr * 2,) and np.isfinite(out).all()


def test_soundfile_layout_is_refused_with_the_expected_one(tiny_model):
    samples_channels = make_noisy(0.1, channels=2).T  # (4800, 2): soundfile's layout, not transposed
    with pytest.raises(AudioError, match=r"\(4800, 2\).*expected \(channels, samples\).*\.T"):
        enhance(tiny_model, samples_channels, 48_000)
    with pytest.raises(AudioError, match="more channels than samples or than 1024"):
        enhance(tiny_model, np.zeros((1025, 2000), np.float32), 48_000)
    with pytest.raises(AudioError, match=r"got \(4800, 2\) \(soundfile's \(samples, channels\) layout: pass its \.T\)"):
        Enhancer(tiny_model, channels=2).process(samples_channels)
    with pytest.raises(ConfigError, match="channels must be 1..1024"):
        Enhancer(tiny_model, channels=480_000)


def test_enhancer_returns_the_type_it_was_given(tiny_model):
    audio = make_noisy(0.05)
    numpy_stream, torch_stream = Enhancer(tiny_model), Enhancer(tiny_model)
    out = [numpy_stream.process(audio), numpy_stream.flush()]
    ref = [torch_stream.process(torch.from_numpy(audio)), torch_stream.flush()]
    assert all(isinstance(o, np.ndarray) for o in out) and all(isinstance(r, torch.Tensor) for r in ref)
    for o, r in zip(out, ref):
        np.testing.assert_array_equal(o, r.numpy())


def test_the_package_top_level_names_are_the_streaming_modules():
    import dfn4core
    import dfn4core.files
    import dfn4core.streaming

    assert dfn4core.enhance is dfn4core.streaming.enhance and dfn4core.Enhancer is dfn4core.streaming.Enhancer
    assert type(dfn4core) is type(dfn4core.streaming)  # a plain module: no class swap keeps `enhance` a function

"""The library's generated speech: the same for the same seed, speech-like (voiced syllables and pauses)."""

import numpy as np

from dfn4core.synth import NOISE_LEVEL, noisy_speech, speech_like


def test_same_seed_same_signal_and_the_noise_is_on_top():
    a, b = noisy_speech(0.5, 16_000, seed=3), noisy_speech(0.5, 16_000, seed=3)
    assert a.dtype == np.float32 and a.shape == (8_000,) and np.array_equal(a, b)
    assert not np.array_equal(a, noisy_speech(0.5, 16_000, seed=4))
    clean = speech_like(0.5, 16_000, np.random.default_rng(3))
    assert abs(np.std(a - clean) - NOISE_LEVEL) < 0.1 * NOISE_LEVEL


def test_syllables_alternate_with_pauses():
    x = speech_like(2.0, 48_000, np.random.default_rng(0))
    frames = x[: 2 * 48_000 // 960 * 960].reshape(-1, 960)  # 20 ms frames
    rms = np.sqrt(np.mean(frames**2, axis=1))
    assert (rms > 0.05).mean() > 0.3 and (rms < 0.01).mean() > 0.05 and np.abs(x).max() < 1

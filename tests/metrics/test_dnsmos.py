"""DNSMOS equals speechmos's own code path; the numpy log-mel equals librosa's.

Reference values were recorded once by running `speechmos.dnsmos.run(x, 16000)` (speechmos
0.0.1.1, librosa 0.11.0, onnxruntime 1.32.0, in a throw-away environment) on the same float32
samples, built exactly as below; librosa is not a dependency of dfn4.
"""

import importlib
import importlib.util

import numpy as np
import pytest
from testaudio import make_noisy

from dfn4core.io import read_audio, resample
from dfn4core.metrics import MetricError, dnsmos
from dfn4core.metrics.dnsmos import log_mel, mel_filterbank

# (sig, bak, ovrl, p808) from speechmos.dnsmos.run
REFERENCE = {
    "tone_5s": (1.339614, 1.270629, 1.25414, 2.181685),  # repeated to 10 s: one window
    "tone_11s": (1.432373, 1.420839, 1.33004, 2.303935),  # two windows, averaged
    "noisy_snr0": (3.604316, 2.682695, 2.584495, 2.981942),
}


def scores(x: np.ndarray, sr: int = 16_000) -> tuple[float, ...]:
    s = dnsmos(x, sr)
    return s.sig, s.bak, s.ovrl, s.p808


def test_short_clip_matches_speechmos():
    np.testing.assert_allclose(scores(make_noisy(5.0, sr=16_000)[0]), REFERENCE["tone_5s"], atol=1e-3)


def test_long_clip_matches_speechmos():
    np.testing.assert_allclose(scores(make_noisy(11.0, sr=16_000, seed=1)[0]), REFERENCE["tone_11s"], atol=1e-3)


def test_real_recording_matches_speechmos(real_dir):
    audio, sr = read_audio(real_dir / "noisy_snr0.wav")
    np.testing.assert_allclose(scores(resample(audio[0], sr, 16_000)), REFERENCE["noisy_snr0"], atol=1e-3)


def test_other_rates_are_resampled_to_16_khz():
    x = make_noisy(5.0, sr=48_000)[0]
    assert scores(x, 48_000) == scores(resample(x, 48_000, 16_000))


def test_mel_filterbank_is_librosa_slaney():
    mel = mel_filterbank(16_000, 321, 120)
    assert mel.shape == (120, 161) and (mel >= 0).all()
    # librosa.filters.mel(sr=16000, n_fft=321, n_mels=120): row sums, peak bins, total
    np.testing.assert_allclose(
        mel.sum(axis=1)[[0, 1, 59, 119]], [2.12704e-05, 0.0400931, 0.0195611, 0.0200680], rtol=1e-4
    )
    assert mel.argmax(axis=1)[[0, 59, 119]].tolist() == [1, 33, 156]
    assert mel.sum() == pytest.approx(2.397503, rel=1e-6)


def test_log_mel_shape_and_range():
    feat = log_mel(make_noisy(9.0, sr=16_000)[0][:144_000])
    assert feat.shape == (900, 120)  # the P.808 model's input
    assert feat.max() == pytest.approx(1.0) and feat.min() >= -1.0  # (dB - max + 40) / 40 over 80 dB


def test_missing_speechmos_is_a_metric_error(monkeypatch):
    module = importlib.import_module("dfn4core.metrics.dnsmos")  # the package attribute is the function
    module._sessions.cache_clear()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MetricError, match="pip install speechmos"):
        dnsmos(np.ones(16_000) * 0.1, 16_000)
    module._sessions.cache_clear()

"""PESQ and STOI/ESTOI wrappers: sanity values, 16 kHz resampling, failures as MetricError."""

import numpy as np
import pytest
from testaudio import make_noisy

from dfn4core.io import resample
from dfn4core.metrics import MetricError, estoi, pesq, stoi

SR = 16_000


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    clean = make_noisy(2.0, sr=SR)[0]
    return clean, clean + 0.1 * np.random.default_rng(3).standard_normal(clean.size).astype(np.float32)


def test_identical_signals_get_top_scores(pair):
    clean, _ = pair
    assert pesq(clean, clean, SR) >= 4.5
    assert pesq(clean, clean, SR, mode="nb") >= 4.4
    assert stoi(clean, clean, SR) == pytest.approx(1.0, abs=1e-6)
    assert estoi(clean, clean, SR) == pytest.approx(1.0, abs=1e-6)


def test_noise_lowers_every_score(pair):
    clean, noisy = pair
    assert 1.0 <= pesq(clean, noisy, SR) < 3.0
    assert 1.0 <= pesq(clean, noisy, SR, mode="nb") < 3.5
    assert 0.0 < estoi(clean, noisy, SR) < stoi(clean, noisy, SR) < 1.0


def test_other_rates_are_scored_at_16_khz(pair):
    clean, noisy = pair
    clean_48k, noisy_48k = resample(clean, SR, 48_000), resample(noisy, SR, 48_000)
    back = resample(clean_48k, 48_000, SR), resample(noisy_48k, 48_000, SR)
    assert pesq(clean_48k, noisy_48k, 48_000) == pytest.approx(pesq(*back, SR), abs=1e-6)
    assert stoi(clean_48k, noisy_48k, 48_000) == pytest.approx(stoi(*back, SR), abs=1e-9)


def test_failures_are_metric_errors(pair):
    clean, noisy = pair
    with pytest.raises(MetricError, match="PESQ mode must be one of"):
        pesq(clean, noisy, SR, mode="fb")
    with pytest.raises(MetricError, match="lengths differ"):
        pesq(clean, noisy[:-1], SR)
    with pytest.raises(MetricError, match="reference is silent"):
        stoi(np.zeros_like(clean), noisy, SR)
    with pytest.raises(MetricError, match="PESQ failed: "):
        pesq(clean[:1000], noisy[:1000], SR)  # 62 ms: too short for PESQ
    with pytest.raises(MetricError, match="too short for STOI: 62 ms, it needs at least 397 ms"):
        stoi(clean[:1000], noisy[:1000], SR)  # pystoi itself fails with an AxisError below 397 ms
    mostly_silent = np.concatenate([clean[:1000], np.zeros(9000, clean.dtype)])
    with pytest.raises(MetricError, match="STOI failed: too few non-silent frames"):
        stoi(mostly_silent, noisy[:10_000], SR)

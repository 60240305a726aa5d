"""SI-SDR and segmental SNR: known values, invariances, and the checks shared by every metric."""

import numpy as np
import pytest
import torch
from testaudio import make_noisy

from dfn4core.io import resample
from dfn4core.metrics import MetricError, check_pair, segmental_snr, si_sdr
from dfn4core.metrics.sdr import si_sdr_batch

SR = 16_000


@pytest.fixture
def clean() -> np.ndarray:
    return make_noisy(1.0, sr=SR)[0]


def orthogonal_noise(x: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    """White noise orthogonal to zero-mean x, at snr_db relative to x."""
    x = x - x.mean()
    n = np.random.default_rng(seed).standard_normal(x.size)
    n -= n.mean()
    n -= np.dot(n, x) / np.dot(x, x) * x
    return n * np.sqrt(np.dot(x, x) / np.dot(n, n) / 10 ** (snr_db / 10))


def test_identical_signals_score_above_60_db(clean):
    assert si_sdr(clean, clean, SR) > 60


def test_white_noise_at_0_db_gives_0_db(clean):
    assert si_sdr(clean, clean + orthogonal_noise(clean, 0.0), SR) == pytest.approx(0.0, abs=0.1)
    random = clean + np.random.default_rng(2).standard_normal(clean.size) * clean.std()  # not made orthogonal
    assert si_sdr(clean, random, SR) == pytest.approx(0.0, abs=0.1)


def test_si_sdr_ignores_scale_and_offset_and_takes_tensors(clean):
    noisy = clean + orthogonal_noise(clean, 10.0)
    assert si_sdr(clean, noisy, SR) == pytest.approx(10.0, abs=1e-6)
    assert si_sdr(clean, 3.0 * noisy + 0.2, SR) == pytest.approx(10.0, abs=1e-6)
    assert si_sdr(torch.from_numpy(clean)[None], torch.from_numpy(noisy), SR) == pytest.approx(10.0, abs=1e-6)


def test_batched_si_sdr_equals_the_checked_one_row_by_row(clean):
    rows = np.stack([clean + orthogonal_noise(clean, snr, seed=i) for i, snr in enumerate((0.0, 10.0, 20.0))])
    expected = [si_sdr(clean, row, SR) for row in rows]
    reference = np.broadcast_to(clean, rows.shape)
    np.testing.assert_allclose(si_sdr_batch(reference, rows), expected, atol=1e-6)
    est = torch.from_numpy(rows).requires_grad_()
    scores = si_sdr_batch(torch.from_numpy(reference.copy()), est)  # differentiable, as training needs
    scores.sum().backward()
    np.testing.assert_allclose(scores.detach().numpy(), expected, atol=1e-6)
    assert est.grad is not None and torch.isfinite(est.grad).all()


def test_segmental_snr_is_clamped_to_minus_10_and_35_db(clean):
    assert segmental_snr(clean, clean, SR) == pytest.approx(35.0)
    assert segmental_snr(clean, np.zeros_like(clean), SR) == pytest.approx(0.0, abs=1e-9)  # noise = signal
    assert segmental_snr(clean, -clean * 100, SR) == pytest.approx(-10.0)
    assert 0.0 < segmental_snr(clean, clean + orthogonal_noise(clean, 5.0), SR) < 35.0


def test_mismatched_lengths_are_rejected_unless_aligned(clean):
    with pytest.raises(
        MetricError, match=r"lengths differ: reference 16000 samples, estimate 15990 \(align=True trims\)"
    ):
        si_sdr(clean, clean[:-10], SR)
    assert si_sdr(clean, clean[:-10], SR, align=True) > 60
    ref, est = check_pair(clean, clean[:-10], SR, align=True)
    assert ref.size == est.size == clean.size - 10


def test_mismatched_rates_are_rejected_unless_aligned(clean):
    est_48k = resample(clean, SR, 48_000)
    with pytest.raises(MetricError, match="sample rates differ: reference 16000 Hz, estimate 48000 Hz"):
        segmental_snr(clean, est_48k, SR, estimate_sr=48_000)
    assert si_sdr(clean, est_48k, SR, estimate_sr=48_000, align=True) > 20  # soxr's anti-alias band loses some noise


@pytest.mark.parametrize(
    "reference, estimate, message",
    [
        (np.zeros(16_000), np.ones(16_000), "reference is silent"),
        (
            np.ones((2, 100)),
            np.ones((2, 100)),
            r"reference must be mono, shape \(N,\) or \(1, N\); got shape \(2, 100\)",
        ),
        (np.ones(0), np.ones(0), "reference is empty"),
        (np.ones(100), np.full(100, np.nan), "estimate contains NaN or infinite samples"),
        (np.full(16_000, 0.5), np.ones(16_000), "reference has no energy after removing its mean"),
    ],
)
def test_bad_inputs_raise_a_clear_metric_error(reference, estimate, message):
    with pytest.raises(MetricError, match=message):
        si_sdr(reference, estimate, SR)


def test_bad_rate_and_too_short_signal():
    with pytest.raises(MetricError, match="sample rate must be a positive integer"):
        si_sdr(np.ones(10), np.ones(10), 0)
    with pytest.raises(MetricError, match="signal too short for 30 ms frames: 500 samples at 16000 Hz"):
        segmental_snr(np.ones(500), np.ones(500), SR)

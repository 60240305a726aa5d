"""Composite CSIG/CBAK/COVL: values of a line-by-line port of Hu & Loizou's composite.m, and limits."""

import numpy as np
import pytest
from testaudio import make_noisy

from dfn4core.metrics import MetricError, composite
from dfn4core.metrics.composite import kept_mean, llr_frames, wss_frames
from dfn4core.metrics.sdr import MATLAB_EPS

SR = 16_000


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    clean = make_noisy(2.0, sr=SR)[0].astype(np.float64)
    return clean, clean + 0.05 * np.random.default_rng(1).standard_normal(clean.size)


def test_matches_the_matlab_reference(pair):
    # Recorded once from a loop-for-loop Python port of composite.m (wss, llr, lpcoeff, snr), PESQ fixed at 2.0.
    c = composite(*pair, SR, pesq_score=2.0)
    got = (c.csig, c.cbak, c.covl, c.llr, c.wss, c.ssnr)
    np.testing.assert_allclose(got, (3.993761, 2.817337, 3.014858, 0.167398, 14.776319, 5.250339), atol=2e-6)
    assert c.pesq == 2.0


def test_narrow_band_lpc_order(pair):
    clean, noisy = (x[::2] + MATLAB_EPS for x in pair)  # 8 kHz: LPC order 10
    assert kept_mean(llr_frames(clean, noisy, 8000)) == pytest.approx(0.205078, abs=1e-6)
    assert kept_mean(wss_frames(clean, noisy, 8000)) == pytest.approx(18.724967, abs=1e-6)


def test_identical_signals_hit_the_ceiling(pair):
    clean, _ = pair
    c = composite(clean, clean, SR)
    assert (c.csig, c.covl) == (5.0, 5.0) and c.cbak > 4.5 and c.pesq >= 4.5
    assert abs(c.llr) < 1e-9 and abs(c.wss) < 1e-9 and c.ssnr == pytest.approx(35.0)


def test_more_noise_lowers_every_rating(pair):
    clean, noisy = pair
    worse = clean + 4 * (noisy - clean)
    a, b = composite(clean, noisy, SR), composite(clean, worse, SR)
    assert a.csig > b.csig and a.cbak > b.cbak and a.covl > b.covl
    assert all(1.0 <= v <= 5.0 for v in (b.csig, b.cbak, b.covl))


def test_rejects_short_or_mismatched_signals(pair):
    clean, noisy = pair
    with pytest.raises(MetricError, match="signal too short for 30 ms frames"):
        composite(clean[:400], noisy[:400], SR, pesq_score=1.0)
    with pytest.raises(MetricError, match="sample rates differ"):
        composite(clean, noisy, SR, estimate_sr=8000)

"""Mixing and augmentation: SNR, speech activity, reverberation target, EQ, band-limit, clipping."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from testaudio import speech_like

from dfn4core.data import DataConfig
from dfn4core.data.mixing import (
    bandlimit,
    biquad,
    biquad_response,
    change_speed,
    draw_speed,
    equalize,
    mix,
    random_eq,
    random_segment,
    reverberate,
    scale_to_snr,
    snr_db,
    speech_ratio,
    speed_input_size,
)
from dfn4core.data.sources import ArrayAudio

SR = 48_000
PLAIN = DataConfig(gain_db=(0.0, 0.0), p_reverb=0.0, p_eq=0.0, p_bandlimit=0.0, p_clip=0.0)


def white(n: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def band_db(x: np.ndarray, lo_hz: float, hi_hz: float) -> float:
    spec = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    return 10 * np.log10(spec[(freqs >= lo_hz) & (freqs < hi_hz)].mean() + 1e-20)


def rir(seed: int = 0, delay: int = 300) -> np.ndarray:
    t = np.arange(24_000) / SR
    h = np.random.default_rng(seed).standard_normal(t.size) * np.exp(-t / 0.3) * 0.01  # direct-to-reverberant ~1 dB
    h[:delay] = 0
    h[delay] = 1.0
    return h


@pytest.mark.parametrize("snr", [-5, 0, 5, 10, 20, 40])
def test_scale_to_snr_is_exact(snr):
    speech, noise = speech_like(0.5), white(24_000)
    assert snr_db(speech, scale_to_snr(speech, noise, snr)) == pytest.approx(snr, abs=0.1)


@pytest.mark.parametrize("snr", [-5, 40])
def test_mix_has_the_requested_snr_before_gain_and_clipping(snr):
    cfg = dataclasses.replace(PLAIN, snrs_db=(snr,))
    noisy, clean, noise = mix(speech_like(0.5), white(24_000), None, cfg, np.random.default_rng(0), SR)
    assert snr_db(clean, noise) == pytest.approx(snr, abs=0.1)
    np.testing.assert_allclose(noisy, clean + noise, atol=1e-6)


def test_silent_noise_leaves_speech_unchanged():
    noisy, clean, noise = mix(speech_like(0.2), np.zeros(9_600, np.float32), None, PLAIN, np.random.default_rng(0), SR)
    assert np.array_equal(noisy, clean) and not noise.any()


def test_random_segment_prefers_speech_over_silence():
    x = np.zeros(10 * SR, np.float32)
    x[8 * SR :] = speech_like(2.0)  # speech in the last 20 % only
    audio, rng = ArrayAudio(x), np.random.default_rng(0)
    picked = [speech_ratio(random_segment(audio, SR // 2, rng, SR, -50.0, 0.3), -50.0, SR) for _ in range(20)]
    blind = [speech_ratio(random_segment(audio, SR // 2, rng, SR), -50.0, SR) for _ in range(20)]
    assert np.mean(picked) > 0.3 > np.mean(blind)


def test_short_files_are_padded_with_zeros_or_looped():
    audio = ArrayAudio(np.ones(100, np.float32))
    rng = np.random.default_rng(0)
    assert random_segment(audio, 250, rng, SR).sum() == 100
    assert random_segment(audio, 250, rng, SR, wrap=True).sum() == 250


def test_reverb_target_keeps_the_direct_path():
    dry = speech_like(0.5)
    reverberant, target = reverberate(dry, rir(), early_size=2_400)
    corr = lambda y: np.corrcoef(dry, y)[0, 1]  # noqa: E731
    assert corr(target) > corr(reverberant) and corr(target) > 0.5
    assert reverberant.shape == target.shape == dry.shape and np.isfinite(reverberant).all()


def test_mix_with_reverb_puts_the_late_tail_in_the_noise():
    cfg = dataclasses.replace(PLAIN, p_reverb=1.0, snrs_db=(40.0,))
    dry = speech_like(0.5)
    noisy, clean, noise = mix(dry, white(24_000), rir(), cfg, np.random.default_rng(0), SR)
    assert np.corrcoef(dry, clean)[0, 1] > np.corrcoef(dry, noisy)[0, 1]
    assert snr_db(clean, noise) < 30  # late reverberation counts as noise for the target


def test_peaking_biquad_has_its_gain_at_the_centre():
    b, a = biquad("peaking", 1_000.0, 12.0, 1.0, SR)
    h = biquad_response(b, a, SR)  # 1 Hz bins
    assert 20 * np.log10(abs(h[1000])) == pytest.approx(12.0, abs=1e-6)
    assert abs(20 * np.log10(abs(h[20_000]))) < 0.2


@pytest.mark.parametrize(
    ("kind", "boosted", "flat"), [("lowshelf", (30, 80), (8_000, 20_000)), ("highshelf", (12_000, 20_000), (30, 200))]
)
def test_shelves_boost_their_side_only(kind, boosted, flat):
    x = white(SR)
    y = equalize(x, [biquad(kind, 1_000.0, 9.0, 0.7, SR)])
    assert band_db(y, *boosted) - band_db(x, *boosted) == pytest.approx(9.0, abs=1.0)
    assert band_db(y, *flat) - band_db(x, *flat) == pytest.approx(0.0, abs=1.0)


def test_equalize_changes_the_spectrum_as_the_filter_says():
    x = white(SR)
    y = equalize(x, [biquad("peaking", 2_000.0, -10.0, 2.0, SR)])
    assert band_db(y, 1_980, 2_020) - band_db(x, 1_980, 2_020) == pytest.approx(-10.0, abs=1.0)
    assert band_db(y, 10_000, 20_000) - band_db(x, 10_000, 20_000) == pytest.approx(0.0, abs=0.3)
    z = random_eq(x, np.random.default_rng(0), SR)
    assert z.shape == x.shape and z.dtype == np.float32 and not np.allclose(z, x)


@pytest.mark.parametrize("sr_low", [8_000, 16_000, 22_050, 32_000])
def test_bandlimit_leaves_no_energy_above_the_cutoff(sr_low):
    x = white(SR // 2)
    y = bandlimit(x, sr_low, SR)
    assert y.shape == x.shape
    # soxr's low-pass is steep; the -55 dB floor comes from the cut ends of the signal
    assert band_db(y, 0.55 * sr_low, SR / 2) - band_db(x, 0.55 * sr_low, SR / 2) < -45
    assert band_db(y, 100, 0.4 * sr_low) - band_db(x, 100, 0.4 * sr_low) == pytest.approx(0.0, abs=0.5)


def test_bandlimited_target_but_full_band_noisy():
    cfg = dataclasses.replace(PLAIN, p_bandlimit=1.0, bandlimit_rates_hz=(16_000,), snrs_db=(0.0,))
    noisy, clean, _ = mix(white(24_000, 1), white(24_000, 2), None, cfg, np.random.default_rng(0), SR)
    assert band_db(clean, 9_000, 24_000) < band_db(clean, 100, 7_000) - 45
    assert band_db(noisy, 9_000, 24_000) > band_db(noisy, 100, 7_000) - 10  # the noise stays full-band


def test_clipping_touches_the_noisy_input_only():
    cfg = dataclasses.replace(PLAIN, p_clip=1.0, snrs_db=(20.0,))
    speech = speech_like(0.5)
    noisy, clean, noise = mix(speech, white(24_000), None, cfg, np.random.default_rng(0), SR)
    assert np.abs(noisy).max() < 0.75 * np.abs(clean + scale_to_snr(clean, white(24_000), 20.0)).max()
    np.testing.assert_array_equal(clean, speech)
    np.testing.assert_allclose(noise, noisy - clean, atol=1e-7)


def test_gain_and_peak_guard():
    cfg = dataclasses.replace(PLAIN, gain_db=(30.0, 30.0))
    noisy, clean, noise = mix(speech_like(0.5), white(24_000), None, cfg, np.random.default_rng(0), SR)
    assert max(np.abs(noisy).max(), np.abs(clean).max()) == pytest.approx(0.99, abs=1e-6)


def test_full_chain_shapes_dtypes_finite():
    cfg = DataConfig(p_reverb=1.0, p_eq=1.0, p_bandlimit=1.0, p_clip=1.0)
    rng = np.random.default_rng(5)
    for _ in range(3):
        out = mix(speech_like(0.5), white(24_000), rir(), cfg, rng, SR)
        assert all(y.shape == (24_000,) and y.dtype == np.float32 and np.isfinite(y).all() for y in out)


def peak_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / SR)[np.argmax(spec)])


@pytest.mark.parametrize("factor", [0.85, 0.9, 1.1, 1.15])
def test_change_speed_moves_pitch_by_the_factor_and_fills_the_length(factor):
    length = 24_000
    n = speed_input_size(length, factor, SR)
    tone = np.sin(2 * np.pi * 1000 * np.arange(n) / SR).astype(np.float32)
    out = change_speed(tone, factor, SR, length)
    assert out.shape == (length,) and out.dtype == np.float32
    assert peak_hz(out) == pytest.approx(1000 * factor, abs=3)
    assert np.abs(out[-480:]).max() > 0.5  # signal to the end: enough input was read, no zero padding
    assert np.abs(change_speed(tone[: n // 2], factor, SR, length)[-480:]).max() == 0  # too short: padded


def test_a_speed_factor_of_one_only_fits_the_length():
    x = white(1000)
    assert speed_input_size(800, 1.0, SR) == 800
    np.testing.assert_array_equal(change_speed(x, 1.0, SR, 800), x[:800])


def test_draw_speed_draws_nothing_when_off_and_stays_in_range_when_on():
    rng = np.random.default_rng(5)
    assert draw_speed(PLAIN, rng) == 1.0
    assert rng.random() == np.random.default_rng(5).random()  # no number was taken: items stay as before
    on = dataclasses.replace(PLAIN, p_speed=1.0, speed_range=(0.9, 1.1))
    factors = [draw_speed(on, rng) for _ in range(200)]
    assert all(0.9 <= f <= 1.1 for f in factors) and np.std(factors) > 0.04

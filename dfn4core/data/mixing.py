"""On-the-fly mixing and augmentation: pure functions of arrays and an explicit np.random.Generator.

Segments with a speech-activity check, speed changes, SNR mixing, gain, reverberation (the target
keeps the direct path and early reflections), random biquad EQ, band-limiting and clipping. All
signals are mono float arrays at the rate `sr` the caller passes (the model's `DspConfig.sr`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from dfn4core.data.config import DataConfig
from dfn4core.data.sources import Audio
from dfn4core.io import resample

VAD_FRAME_S = 0.02
SEGMENT_TRIES = 5  # speech segments tried before keeping the most active one
EPS = 1e-10
EQ_MAX_FILTERS = 3
EQ_FREQ_HZ = (40.0, 12_000.0)  # centre/corner frequencies, drawn log-uniformly
EQ_GAIN_DB = (-12.0, 12.0)
EQ_Q = (0.5, 2.0)
EQ_KINDS = ("peaking", "lowshelf", "highshelf")
EQ_TAIL_SIZE = 8192  # zero padding so the filters' decaying tails do not wrap around
CLIP_LEVEL = (0.1, 0.7)  # clipping threshold as a fraction of the noisy input's peak
PEAK_MAX = 0.99  # items are scaled down so no sample of noisy or clean exceeds this


def frame_levels_db(x: np.ndarray, frame_size: int) -> np.ndarray:
    """RMS level in dBFS of each full frame; (N,) -> (N // frame_size,)."""
    n = len(x) // frame_size
    frames = np.asarray(x[: n * frame_size], dtype=np.float64).reshape(n, frame_size)
    return 10 * np.log10(np.mean(frames**2, axis=1) + EPS)


def speech_ratio(x: np.ndarray, threshold_db: float, sr: int) -> float:
    """Fraction of 20 ms frames of `x` whose level exceeds `threshold_db` (an energy VAD)."""
    levels = frame_levels_db(x, round(VAD_FRAME_S * sr))
    return float(np.mean(levels > threshold_db)) if len(levels) else 0.0


def fit_length(x: np.ndarray, length: int, wrap: bool = False) -> np.ndarray:
    """Crops or pads `x` to `length`: zeros at the end, or repeats of `x` when `wrap`."""
    if len(x) >= length:
        return x[:length]
    if wrap and len(x) > 0:
        return np.tile(x, -(-length // len(x)))[:length]
    return np.pad(x, (0, length - len(x)))


def random_segment(
    audio: Audio,
    length: int,
    rng: np.random.Generator,
    sr: int,
    threshold_db: float | None = None,
    min_ratio: float = 0.0,
    wrap: bool = False,
) -> np.ndarray:
    """A random segment of `length` samples, checked for speech activity.

    With `threshold_db`, up to SEGMENT_TRIES segments are drawn until one has at least
    `min_ratio` active frames; otherwise the most active one is kept, so silence cannot dominate.

    Args:
        audio: mono audio with `frames` and `read(start, stop)`.
        length: samples wanted.
        rng: the item's generator.
        sr: sample rate of `audio` (the VAD's frames are 20 ms).
        threshold_db: VAD frame threshold in dBFS; None = no activity check.
        min_ratio: fraction of active frames that accepts a segment.
        wrap: pad a short file by repeating it (noise) instead of with zeros (speech).

    Returns:
        float32 segment, shape (length,).
    """
    if audio.frames <= length:
        return fit_length(audio.read(0, audio.frames), length, wrap).astype(np.float32)
    best, best_ratio = None, -1.0
    for _ in range(SEGMENT_TRIES if threshold_db is not None else 1):
        start = int(rng.integers(0, audio.frames - length + 1))
        segment = fit_length(audio.read(start, start + length), length, wrap)
        if threshold_db is None:
            return segment.astype(np.float32)
        ratio = speech_ratio(segment, threshold_db, sr)
        if ratio > best_ratio:
            best, best_ratio = segment, ratio
        if ratio >= min_ratio:
            break
    return np.asarray(best, dtype=np.float32)


def draw_speed(cfg: DataConfig, rng: np.random.Generator) -> float:
    """A speed factor for one signal: with probability `cfg.p_speed` one drawn uniformly from
    `cfg.speed_range`, else 1. Draws nothing from `rng` when p_speed is 0, so configs without speed
    changes give the items they gave before the setting existed."""
    if cfg.p_speed > 0 and rng.random() < cfg.p_speed:
        return float(rng.uniform(*cfg.speed_range))
    return 1.0


def speed_input_size(length: int, factor: float, sr: int) -> int:
    """Samples to read so that `change_speed(x, factor, sr, length)` holds `length` samples of signal
    (`length` itself for a factor of 1)."""
    if factor == 1.0:
        return length
    return math.ceil(length * _recorded_rate(factor, sr) / sr) + 1


def change_speed(x: np.ndarray, factor: float, sr: int, length: int) -> np.ndarray:
    """`x` played `factor` times as fast, cropped or zero-padded to `length`.

    The samples are taken as recorded at round(sr * factor) Hz and resampled to `sr` (soxr), so
    tempo and pitch change together (a factor of 0.9 is 10 % slower and lower, like another
    voice or engine). A factor of 1 only fits the length. Read `speed_input_size(length, factor,
    sr)` samples for a result without padding. Shapes: (N,) -> (length,).
    """
    return fit_length(resample(x, _recorded_rate(factor, sr), sr), length).astype(np.float32, copy=False)


def _recorded_rate(factor: float, sr: int) -> int:
    """The rate a segment is taken as recorded at for a speed change by `factor` (one rule for
    `speed_input_size` and `change_speed`, which must agree)."""
    return round(sr * factor)


def snr_db(speech: np.ndarray, noise: np.ndarray) -> float:
    """10 log10 of the energy ratio of `speech` to `noise`."""
    return 10 * math.log10((_energy(speech) + EPS) / (_energy(noise) + EPS))


def _energy(x: np.ndarray) -> float:
    return float(np.sum(np.square(x, dtype=np.float64)))


def scale_to_snr(speech: np.ndarray, noise: np.ndarray, snr: float) -> np.ndarray:
    """`noise` scaled so that speech / noise has `snr` dB (silent speech or noise: noise unchanged)."""
    p_speech, p_noise = _energy(speech), _energy(noise)
    if p_speech < EPS or p_noise < EPS:
        return noise
    return noise * np.float32(math.sqrt(p_speech / (p_noise * 10 ** (snr / 10))))


def fast_fft_size(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n: FFT sizes numpy transforms fast."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            size = p35 << max(0, (-(-n // p35) - 1).bit_length())  # times the smallest power of 2 reaching n
            best = min(best, size)
            p35 *= 3
        p5 *= 5
    return best


def fft_convolve(x: np.ndarray, *hs: np.ndarray) -> list[np.ndarray]:
    """Full linear convolutions of `x` with each h via the FFT (one transform of x); (N,), (K,) -> (N + K - 1,)."""
    n_fft = fast_fft_size(len(x) + max(len(h) for h in hs) - 1)
    spec = np.fft.rfft(x, n_fft)
    return [np.fft.irfft(spec * np.fft.rfft(h, n_fft), n_fft)[: len(x) + len(h) - 1] for h in hs]


def reverberate(speech: np.ndarray, rir: np.ndarray, early_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Reverberant speech and its target with only the direct path and early reflections.

    The RIR is cut to start at its peak (the direct path), so both outputs line up with the
    dry speech. Both are scaled alike so the reverberant speech keeps the dry speech's energy.

    Args:
        speech: dry speech, (N,).
        rir: room impulse response, (K,).
        early_size: samples of the RIR after its peak that the target keeps.

    Returns:
        (reverberant, target), each (N,) float32.
    """
    rir = np.asarray(rir, dtype=np.float64)
    rir = rir[int(np.argmax(np.abs(rir))) :]
    n = len(speech)
    reverberant, target = (y[:n] for y in fft_convolve(speech, rir, rir[: early_size + 1]))
    scale = math.sqrt((_energy(speech) + EPS) / (_energy(reverberant) + EPS))
    return (reverberant * scale).astype(np.float32), (target * scale).astype(np.float32)


def biquad(kind: str, freq_hz: float, gain_db: float, q: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (b, a), each (3,), of an RBJ-cookbook "peaking", "lowshelf" or "highshelf" filter."""
    amp = 10 ** (gain_db / 40)
    w0 = 2 * math.pi * freq_hz / sr
    cos, alpha = math.cos(w0), math.sin(w0) / (2 * q)
    if kind == "peaking":
        b = [1 + alpha * amp, -2 * cos, 1 - alpha * amp]
        a = [1 + alpha / amp, -2 * cos, 1 - alpha / amp]
    elif kind in ("lowshelf", "highshelf"):
        s = 1 if kind == "lowshelf" else -1  # the cookbook's two shelves differ only in these signs
        k = 2 * math.sqrt(amp) * alpha
        b = [amp * ((amp + 1) - s * (amp - 1) * cos + k), s * 2 * amp * ((amp - 1) - s * (amp + 1) * cos),
             amp * ((amp + 1) - s * (amp - 1) * cos - k)]
        a = [(amp + 1) + s * (amp - 1) * cos + k, -s * 2 * ((amp - 1) + s * (amp + 1) * cos),
             (amp + 1) + s * (amp - 1) * cos - k]
    else:
        raise ValueError(f"unknown biquad kind {kind!r}")
    return np.array(b) / a[0], np.array(a) / a[0]


def biquad_response(b: np.ndarray, a: np.ndarray, n_fft: int) -> np.ndarray:
    """Complex frequency response at the n_fft // 2 + 1 rfft bins."""
    return _response(b, a, np.exp(-2j * np.pi * np.arange(n_fft // 2 + 1) / n_fft))


def _response(b: np.ndarray, a: np.ndarray, z: np.ndarray) -> np.ndarray:
    """H(z) of a biquad, z holding z^-1 on the unit circle."""
    return (b[0] + z * (b[1] + z * b[2])) / (a[0] + z * (a[1] + z * a[2]))


def equalize(x: np.ndarray, filters: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Applies a cascade of biquads in the frequency domain (fast; exact up to the truncated tail).

    Shapes:
        x: (N,) -> (N,) float32.
    """
    n_fft = fast_fft_size(len(x) + EQ_TAIL_SIZE)
    spec = np.fft.rfft(x, n_fft)
    z = np.exp(-2j * np.pi * np.arange(n_fft // 2 + 1) / n_fft)
    for b, a in filters:
        spec *= _response(b, a, z)
    return np.fft.irfft(spec, n_fft)[: len(x)].astype(np.float32)


def random_eq(x: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    """1 to EQ_MAX_FILTERS random peaking/shelf biquads (gains EQ_GAIN_DB, Q EQ_Q); (N,) -> (N,)."""
    filters = []
    for _ in range(int(rng.integers(1, EQ_MAX_FILTERS + 1))):
        kind = EQ_KINDS[int(rng.integers(len(EQ_KINDS)))]
        freq = math.exp(rng.uniform(math.log(EQ_FREQ_HZ[0]), math.log(EQ_FREQ_HZ[1])))
        filters.append(biquad(kind, freq, rng.uniform(*EQ_GAIN_DB), rng.uniform(*EQ_Q), sr))
    return equalize(x, filters)


def bandlimit(x: np.ndarray, sr_low: int, sr: int) -> np.ndarray:
    """Removes content above sr_low / 2: resampled down to sr_low and back (soxr); (N,) -> (N,)."""
    return fit_length(resample(resample(x, sr, sr_low), sr_low, sr), len(x)).astype(np.float32)


def clip(x: np.ndarray, level: float) -> np.ndarray:
    """Hard clipping at +-level."""
    return np.clip(x, -level, level)


def mix(
    speech: np.ndarray,
    noise: np.ndarray,
    rir: np.ndarray | None,
    cfg: DataConfig,
    rng: np.random.Generator,
    sr: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turns a speech and a noise segment into a training item, following `cfg`'s probabilities.

    Order: band-limit the speech (target included), EQ speech and noise (each with p_eq),
    reverberate (target: early part), mix at an SNR from snrs_db, random gain, peak guard,
    clip the noisy input.

    Args:
        speech: clean speech segment, (N,).
        noise: noise segment, (N,).
        rir: room impulse response, or None for no reverberation.
        cfg: augmentation settings.
        rng: the item's generator.
        sr: sample rate of the segments.

    Returns:
        (noisy, clean, noise), each (N,) float32, with noise = noisy - clean (so it holds the
        late reverberation and clipping too: what the model must remove).
    """
    clean = np.asarray(speech, dtype=np.float32)
    noise = np.asarray(noise, dtype=np.float32)
    if rng.random() < cfg.p_bandlimit:
        clean = bandlimit(clean, int(rng.choice(cfg.bandlimit_rates_hz)), sr)
    if rng.random() < cfg.p_eq:
        clean = random_eq(clean, rng, sr)
    if rng.random() < cfg.p_eq:
        noise = random_eq(noise, rng, sr)
    reverberant = clean
    if rir is not None and rng.random() < cfg.p_reverb:
        reverberant, clean = reverberate(clean, rir, round(cfg.early_reflections_ms * sr / 1000))
    noisy = reverberant + scale_to_snr(reverberant, noise, float(rng.choice(cfg.snrs_db)))
    gain = np.float32(10 ** (rng.uniform(*cfg.gain_db) / 20))
    noisy, clean = noisy * gain, clean * gain
    peak = max(float(np.max(np.abs(noisy))), float(np.max(np.abs(clean))))
    if peak > PEAK_MAX:
        noisy, clean = noisy * np.float32(PEAK_MAX / peak), clean * np.float32(PEAK_MAX / peak)
    if rng.random() < cfg.p_clip:
        noisy = clip(noisy, rng.uniform(*CLIP_LEVEL) * float(np.max(np.abs(noisy))))
    noisy, clean = noisy.astype(np.float32), clean.astype(np.float32)
    return noisy, clean, noisy - clean

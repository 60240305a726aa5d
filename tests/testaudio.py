"""Every test signal, made on the fly, and the writer for test files (importable by name: pytest's
pythonpath includes tests/). The library's own generated speech is `dfn4core.synth`."""

from pathlib import Path

import numpy as np
import soundfile as sf

from dfn4core import synth

SPEECH_FLOOR = 1e-4  # white noise under `speech_like`, so its pauses are quiet but not digital silence


def make_noisy(seconds: float, sr: int = 48_000, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A (channels, round(seconds * sr)) float32 test signal: harmonic tone plus white noise (its own per channel).

    For an exact length of `n` samples pass `n / sr` seconds."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * sr)) / sr
    tone = sum(0.1 / k * np.sin(2 * np.pi * 180 * k * t) for k in range(1, 6))
    return (tone + 0.03 * rng.standard_normal((channels, t.size))).astype(np.float32)


VOWEL_FORMANTS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410))


def make_speechlike(seconds: float, sr: int = 48_000, seed: int = 0) -> np.ndarray:
    """A (N,) float32 speech-like signal: syllables of a glottal pulse train with a moving pitch,
    shaped by vowel formants, with short pauses between them (peak about 0.5)."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * sr), dtype=np.float64)
    pos = int(0.1 * sr)
    while pos < out.size:
        n = int(rng.uniform(0.12, 0.3) * sr)
        f0 = rng.uniform(100, 220) * np.linspace(1.1, 0.9, n)  # falling pitch within the syllable
        phase = np.cumsum(f0 / sr)
        pulses = np.diff(np.floor(phase), prepend=0.0)  # one impulse per pitch period
        source = lfilter([1.0], [1.0, -0.97], pulses)  # glottal roll-off
        syllable = np.zeros(n)
        for k, f in enumerate(VOWEL_FORMANTS[rng.integers(len(VOWEL_FORMANTS))]):
            r = np.exp(-np.pi * (60 + 40 * k) / sr)  # bandwidths of 60, 100, 140 Hz
            syllable += lfilter([1.0 - r], [1.0, -2 * r * np.cos(2 * np.pi * f / sr), r * r], source) / (k + 1)
        syllable *= np.hanning(n)
        end = min(pos + n, out.size)
        out[pos:end] += syllable[: end - pos]
        pos = end + int(rng.uniform(0.03, 0.25) * sr)
    return (0.5 * out / np.max(np.abs(out))).astype(np.float32)


def speech_like(seconds: float, sr: int = 48_000, seed: int = 0) -> np.ndarray:
    """(N,) `dfn4core.synth.speech_like` (harmonic syllables with pauses: active and silent 20 ms
    frames both occur) over a faint noise floor, the same for the same seed."""
    rng = np.random.default_rng(seed)
    voiced = synth.speech_like(seconds, sr, rng)
    return (voiced + SPEECH_FLOOR * rng.standard_normal(voiced.size)).astype(np.float32)


def write(path: Path, audio: np.ndarray, sr: int, **kwargs) -> Path:
    """Writes (N,) or (C, N) audio with soundfile (format from the extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.asarray(audio).T, sr, **kwargs)
    return path

"""Generated speech-like audio: the one test and benchmark signal of the library (no files needed).

`dfn4 quantize` calibrates and validates on it, `dfn4 export` checks its graph on it when no
recording is named, and `dfn4 benchmark` times the model on it.
"""

from __future__ import annotations

import numpy as np

NOISE_LEVEL = 0.02  # white noise under `noisy_speech`: the model has something to remove


def speech_like(seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Voiced 'syllables': a gliding harmonic tone with a 4 Hz envelope and pauses, (N,) float32."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = rng.uniform(100, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    tone = sum(np.sin(k * phase) / k for k in range(1, 12) if k * f0.max() < sr / 2)
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t + rng.uniform(0, 6)), 0, None) ** 2
    return (0.3 * tone * envelope).astype(np.float32)


def noisy_speech(seconds: float, sr: int = 48_000, seed: int = 0) -> np.ndarray:
    """`speech_like` plus white noise at NOISE_LEVEL, (N,) float32, the same for the same seed."""
    rng = np.random.default_rng(seed)
    clean = speech_like(seconds, sr, rng)
    return (clean + NOISE_LEVEL * rng.standard_normal(clean.size)).astype(np.float32)

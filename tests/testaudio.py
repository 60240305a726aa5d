"""Test signals made on the fly (importable by name: pytest's pythonpath includes tests/)."""

import numpy as np


def make_noisy(seconds: float, sr: int = 48_000, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A (channels, N) float32 test signal: harmonic tone plus white noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    tone = sum(0.1 / k * np.sin(2 * np.pi * 180 * k * t) for k in range(1, 6))
    return (tone + 0.03 * rng.standard_normal((channels, t.size))).astype(np.float32)

"""Audio generators and writers for the data tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

HDF5_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dfn_hdf5"


def speech_like(seconds: float, sr: int = 48_000, seed: int = 0) -> np.ndarray:
    """(N,) harmonic 'syllables' at 4 Hz with gaps: active and silent 20 ms frames both occur."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120 + 60 * rng.random()
    voiced = sum(0.2 / k * np.sin(2 * np.pi * f0 * k * t + rng.random() * 6) for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.5
    return (voiced * envelope + 1e-4 * rng.standard_normal(t.size)).astype(np.float32)


def write(path: Path, audio: np.ndarray, sr: int, **kwargs) -> Path:
    """Writes (N,) or (C, N) audio with soundfile (format from the extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.asarray(audio).T, sr, **kwargs)
    return path

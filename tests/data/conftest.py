"""Fixtures for the data tests: small audio corpora written into tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from testaudio import speech_like, write

from dfn4core.data import DataConfig, MixSource, SplitConfig


@pytest.fixture
def corpus(tmp_path) -> dict[str, Path]:
    """speech/ (wav 16 kHz, flac 48 kHz stereo, ogg 44.1 kHz), noise/ (wav 48 kHz, flac 22.05 kHz), rir/."""
    rng = np.random.default_rng(1)
    root = tmp_path / "corpus"
    write(root / "speech" / "a.wav", speech_like(1.0, 16_000, 0), 16_000)
    write(root / "speech" / "sub" / "b.flac", np.stack([speech_like(1.2, 48_000, 1)] * 2), 48_000)
    write(root / "speech" / "c.ogg", speech_like(0.8, 44_100, 2), 44_100)
    write(root / "noise" / "n1.wav", 0.1 * rng.standard_normal(48_000), 48_000, subtype="FLOAT")
    write(root / "noise" / "n2.flac", 0.1 * rng.standard_normal(11_025), 22_050)
    t = np.arange(9_600) / 48_000
    rir = rng.standard_normal(t.size) * np.exp(-t / 0.05) * 0.02
    rir[200] = 1.0  # direct path after a 200-sample propagation delay
    write(root / "rir" / "r1.wav", rir, 48_000, subtype="FLOAT")
    return {"root": root, **{name: root / name for name in ("speech", "noise", "rir")}, "cache": tmp_path / "cache"}


@pytest.fixture
def mix_cfg(corpus) -> DataConfig:
    """A 0.5 s, all-augmentations-possible config over `corpus`."""
    source = MixSource(speech=(corpus["speech"],), noise=(corpus["noise"],), rir=(corpus["rir"],))
    return DataConfig(
        train=SplitConfig(mix=(source,), num_items=8),
        valid=SplitConfig(mix=(source,), num_items=4),
        segment_s=0.5,
        p_reverb=0.5,
        p_eq=0.5,
        p_bandlimit=0.5,
        p_clip=0.5,
        cache_dir=corpus["cache"],
        seed=3,
    )

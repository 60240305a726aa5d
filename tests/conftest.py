"""Shared pytest fixtures: seeds, the tiny model, generated signals and the real recordings."""

from pathlib import Path

import pytest
import torch
from testaudio import make_noisy

from dfn4core import DFN4, ModelConfig

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state."""
    torch.manual_seed(0)


@pytest.fixture
def tiny_model() -> DFN4:
    return DFN4(ModelConfig.tiny()).eval()


@pytest.fixture
def noisy_48k() -> torch.Tensor:
    """0.5 s of a harmonic tone plus white noise, (1, N) at 48 kHz (`testaudio.make_noisy`)."""
    return torch.from_numpy(make_noisy(0.5))


@pytest.fixture
def real_dir() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"real recordings not present at {REAL_DATA}")
    return REAL_DATA

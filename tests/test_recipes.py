"""The recipe's configs load under today's schema, so a renamed option fails here, not hours into a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from dfn4core.data.config import load_data_config
from dfn4core.train.config import load_train_config

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
TRAIN = sorted(RECIPES.glob("*/train*.toml"))
DATA = sorted(RECIPES.glob("*/data*.toml"))


def test_the_recipe_has_configs():
    assert TRAIN and DATA


@pytest.mark.parametrize("path", TRAIN, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_train_config_loads(path: Path):
    cfg = load_train_config(path)
    assert cfg.steps > 0 and cfg.batch_size > 0


@pytest.mark.parametrize("path", DATA, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_data_config_loads(path: Path):
    cfg = load_data_config(path)
    assert cfg.train.mix or cfg.train.paired, f"{path.name} has no training sources"


def test_dnsmos_recipe_scores_one_window_of_ovrl():
    cfg = load_train_config(RECIPES / "default" / "train_full_dnsmos.toml")
    assert cfg.loss.weights.dnsmos == 5.0
    assert cfg.loss.dnsmos.mix == (0.0, 0.0, 1.0) and cfg.loss.dnsmos.max_windows == 1
    assert cfg.freeze_norm and cfg.model["temporal"] == "gru"

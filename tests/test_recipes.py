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


@pytest.mark.slow
def test_warm_start_cuts_and_fits_a_lite_from_the_full(tmp_path, real_dir):
    """recipes/default/warm_start.py end to end on a few real recordings: the lite is cut from the
    shipped full, fitted, distilled and written; an unavailable --device stops it first."""
    import importlib.util
    import json
    import shutil

    spec = importlib.util.spec_from_file_location("warm_start", RECIPES / "default" / "warm_start.py")
    warm_start = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(warm_start)
    for kind, pattern in (("speech", "clean_*.wav"), ("noise", "noise_*.flac")):
        (tmp_path / kind).mkdir()
        for f in real_dir.glob(pattern):
            shutil.copy(f, tmp_path / kind)
    mix = f'speech = ["{tmp_path / "speech"}"]\nnoise = ["{tmp_path / "noise"}"]\n'
    (tmp_path / "data.toml").write_text(
        f'seed = 0\nsegment_s = 1.0\ncache_dir = "{tmp_path / "cache"}"\nsnrs_db = [0, 5]\n'
        f"[train]\nnum_items = 20\n[[train.mix]]\n{mix}[valid]\nnum_items = 2\n[[valid.mix]]\n{mix}"
    )
    args = ["--teacher", "full", "--variant", "lite", "--temporal", "gru", "--data", str(tmp_path / "data.toml"),
            "--steps", "2", "--distill-steps", "2", "--batch-size", "2", "--out", str(tmp_path / "lite.pt")]  # fmt: skip
    assert warm_start.main([*args, "--device", "cpu"]) == 0
    summary = json.loads((tmp_path / "lite.json").read_text())
    assert summary["fit_steps"] == 2 and summary["distill_steps"] == 2 and (tmp_path / "lite.pt").is_file()
    from dfn4core.model.checkpoint import load_model

    assert load_model(tmp_path / "lite.pt").cfg.emb_dim == 192
    if not __import__("torch").cuda.is_available():
        with pytest.raises(SystemExit, match="CUDA is not available"):
            warm_start.main([*args, "--device", "cuda"])

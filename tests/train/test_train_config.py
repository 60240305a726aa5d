import re

import pytest

from dfn4core import ConfigError, ModelConfig
from dfn4core.train.config import TrainConfig, dump_toml, load_train_config


def test_defaults_and_variant():
    cfg = TrainConfig(variant="lite")
    assert cfg.model_config() == ModelConfig.lite()
    assert TrainConfig(variant="tiny", model={"enc_layers": 2}).model_config().enc_layers == 2


def test_toml_round_trip(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text('variant = "tiny"\nsteps = 12\n[optim]\nlr = 0.002\nbetas = [0.8, 0.9]\n[model]\nenc_layers = 2\n')
    cfg = load_train_config(path)
    assert (cfg.variant, cfg.steps, cfg.optim.lr, cfg.optim.betas, cfg.model) == ("tiny", 12, 0.002, (0.8, 0.9), {"enc_layers": 2})
    again = tmp_path / "again.toml"
    again.write_text(dump_toml(cfg.to_dict()))
    assert load_train_config(again) == cfg


@pytest.mark.parametrize(
    "text,match",
    [
        ("stepz = 3\n", "unknown keys: stepz"),
        ("[optim]\nlearning_rate = 1\n", r"\[optim\]: unknown keys: learning_rate"),
        ("[model]\nwidth = 3\n", r"unknown \[model\] keys: width"),
        ("variant = 'huge'\n", "variant"),
        ("steps = 0\n", "steps must be >= 1"),
        ("[optim]\nlr_min = 1.0\nlr = 0.1\n", "lr_min <= lr"),
        ("steps = ", "invalid TOML"),
        # Type errors: one line naming the key and the type it needs.
        ('[optim]\nlr = "fast"\n', "optim.lr must be a number, got 'fast'"),
        ('[optim]\nbetas = "ab"\n', "optim.betas must be a list of 2 numbers, got 'ab'"),
        ("[optim]\nbetas = [0.9, 1.5]\n", "optim.betas must be two numbers in [0, 1), got [0.9, 1.5]"),
        ("batch_size = 2.5\n", "batch_size must be an integer, got 2.5"),
        ("steps = 2.5\n", "steps must be an integer, got 2.5"),
        ('[model]\nemb_dim = "big"\n', "model.emb_dim must be an integer, got 'big'"),
        ("[model]\ndf_orders = [3, 5.5]\n", "model.df_orders must be a list of integers, got [3, 5.5]"),
        ('[loss.weights]\nadv = "x"\n', "loss.weights.adv must be a number, got 'x'"),
        ("[loss]\nfft_sizes = [\"a\"]\n", "loss.fft_sizes must be a list of integers, got ['a']"),
        ("freeze_norm = 1\n", "freeze_norm must be true or false, got 1"),
    ],
)
def test_bad_configs_name_the_problem(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(match) if " must be " in match else match) as err:
        load_train_config(path)
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_train_config(tmp_path / "none.toml")


def test_cli_overrides():
    cfg = TrainConfig().replace(steps=5, lr=0.01, variant=None)
    assert cfg.steps == 5 and cfg.optim.lr == 0.01 and cfg.variant == "full"
    with pytest.raises(ConfigError, match="unknown keys: bogus"):
        TrainConfig().replace(bogus=1)

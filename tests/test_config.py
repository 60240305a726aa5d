import dataclasses

import pytest

from dfn4core import ConfigError, DspConfig, ModelConfig


def test_defaults_match_the_design():
    dsp = DspConfig()
    assert (dsp.sr, dsp.fft_size, dsp.hop_size, dsp.nb_erb, dsp.nb_df, dsp.lookahead) == (48_000, 960, 480, 32, 96, 2)
    assert dsp.n_freqs == 481 and dsp.delay_size == 1440 and dsp.latency_size == 1920
    assert ModelConfig.full().df_orders == (3, 5, 7)


def test_variants_differ_only_where_declared():
    full, lite = ModelConfig.full(), ModelConfig.lite()
    assert lite.dsp == full.dsp and lite.conv_ch == full.conv_ch  # DFN3's conv weights fit both
    assert len(lite.df_orders) < len(full.df_orders) and lite.emb_dim < full.emb_dim
    assert lite.erb_dec_layers + lite.df_dec_layers < full.erb_dec_layers + full.df_dec_layers


@pytest.mark.parametrize("variant", ["full", "lite", "tiny"])
def test_dict_round_trip(variant):
    cfg = getattr(ModelConfig, variant)()
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "change,match",
    [
        ({"temporal": "lstm"}, "temporal"),
        ({"df_orders": (5, 3)}, "ascending"),
        ({"df_orders": (2, 5)}, "lookahead"),
        ({"emb_dim": 250}, "divide"),
        ({"lsnr_max_db": -20.0}, "lsnr"),
        ({"wave_kernel": 50}, "wave_kernel"),
    ],
)
def test_invalid_model_configs(change, match):
    with pytest.raises(ConfigError, match=match):
        dataclasses.replace(ModelConfig.full(), **change)


@pytest.mark.parametrize(
    "change,match",
    [({"hop_size": 240}, "2 \\* hop"), ({"nb_df": 500}, "nb_df"), ({"nb_erb": 300}, "fit"), ({"lookahead": -1}, "lookahead"), ({"norm_tau_s": 0}, "tau")],
)
def test_invalid_dsp_configs(change, match):
    with pytest.raises(ConfigError, match=match):
        dataclasses.replace(DspConfig(), **change)


def test_unknown_keys_are_errors():
    with pytest.raises(ConfigError, match="unknown keys: nope "):
        ModelConfig.from_dict({"nope": 1})
    with pytest.raises(ConfigError, match="unknown keys: dsp.hop "):
        ModelConfig.from_dict({"dsp": {"hop": 1}})

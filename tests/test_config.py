import dataclasses
import functools
import re

import pytest

from dfn4core import ConfigError, DspConfig, ModelConfig
from dfn4core.config import dataclass_from_dict


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
    assert full.views and not lite.views  # the lite's streaming budget has no room for them
    assert lite.enc_layers + lite.erb_dec_layers + lite.df_dec_layers == 2  # nor its offline one for a third GRU


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
        ({"erb_dec_layers": -1}, "must not be negative"),
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


def test_variants_are_one_tuple_and_built_by_name():
    assert ModelConfig.VARIANTS == ("full", "lite", "tiny")
    built = [ModelConfig.variant(n) for n in ModelConfig.VARIANTS]
    assert built == [ModelConfig.full(), ModelConfig.lite(), ModelConfig.tiny()]
    with pytest.raises(ConfigError, match="unknown variant 'huge': choose one of full, lite, tiny"):
        ModelConfig.variant("huge")


@dataclasses.dataclass(frozen=True)
class _Inner:
    gain: float = 1.0


@dataclasses.dataclass(frozen=True)
class _Outer:
    name: str
    inner: _Inner = dataclasses.field(default_factory=_Inner)


def test_dataclass_from_dict_names_each_problem_with_its_place():
    convert = {"inner": functools.partial(dataclass_from_dict, _Inner)}
    assert dataclass_from_dict(_Outer, {"name": "a", "inner": {"gain": 2}}, convert=convert) == _Outer("a", _Inner(2))
    cases = [
        ({"name": "a", "inner": {"gain": 2, "gian": 1}}, "unknown keys: inner.gian (known here: gain)"),
        ({"name": "a", "zz": 1, "aa": 2}, "unknown keys: aa, zz (known here: inner, name)"),
        ({"name": "a", "inner": {"gain": "loud"}}, "inner.gain must be a number, got 'loud'"),
        ({"name": "a", "inner": 3}, "inner must be a table"),
        ({}, "missing 1 required positional argument: 'name'"),
    ]
    for data, message in cases:
        with pytest.raises(ConfigError, match=re.escape(message)):
            dataclass_from_dict(_Outer, data, convert=convert)

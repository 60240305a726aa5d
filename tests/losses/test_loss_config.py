"""LossConfig: defaults, dict round trip, unknown keys and bad values refused."""

import pytest

from dfn4core.errors import ConfigError
from dfn4core.losses import DnsmosConfig, LossConfig, LossWeights


def test_defaults_are_dfn3_and_perceptual_terms_off():
    w = LossConfig().weights
    assert (w.spec_mag, w.spec_complex, w.lsnr) == (500.0, 500.0, 1e-3)
    assert w.dnsmos == 0.0 and w.speaker == 0.0 and w.adv > 0 and w.feature_match > 0
    cfg = LossConfig()
    assert cfg.fft_sizes == (256, 512, 1024, 2048) and cfg.gamma == 0.3 and cfg.mpd_periods == (2, 3, 5, 7, 11)


def test_dict_round_trip_with_lists_from_toml():
    cfg = LossConfig(weights=LossWeights(speaker=0.5), dnsmos=DnsmosConfig(mix=(1, 0, 1), max_windows=1))
    data = cfg.to_dict()
    data["fft_sizes"] = list(data["fft_sizes"])  # TOML gives lists
    assert LossConfig.from_dict(data) == cfg


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"fft_size": [512]}, "fft_size"),
        ({"weights": {"spec_mgn": 1.0}}, "weights.spec_mgn"),
        ({"speaker": {"temp": 1}}, "speaker.temp"),
    ],
)
def test_unknown_key_is_refused_by_name(data, key):
    with pytest.raises(ConfigError, match=key):
        LossConfig.from_dict(data)


@pytest.mark.parametrize(
    "data",
    [
        {"weights": {"adv": -1.0}},
        {"weights": 3},
        {"gamma": 0.0},
        {"fft_sizes": [250]},
        {"mpd_periods": []},
        {"mpd_channels": [0]},
        {"dnsmos": {"mix": [0, 0]}},
        {"dnsmos": {"max_windows": 0}},
        {"speaker": {"temperature": 0}},
        {"speaker": {"partial_frames": 0}},
    ],
)
def test_bad_values_are_refused(data):
    with pytest.raises(ConfigError):
        LossConfig.from_dict(data)

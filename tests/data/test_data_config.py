"""Data TOML: every key parsed and checked, unknown keys named, relative paths resolved."""

from __future__ import annotations

from pathlib import Path

import pytest

from dfn4core.config import DspConfig
from dfn4core.data import DataConfig, MixSource, PairedSource, SplitConfig, load_data_config
from dfn4core.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "data.toml"

MINIMAL = """
segment_s = 1.001
[[train.mix]]
speech = ["speech"]
noise = "../noise"
rir = ["/abs/rirs"]
"""


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conf" / "data.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_example_parses_with_paths_resolved_against_its_folder():
    cfg = load_data_config(EXAMPLE)
    folder = EXAMPLE.parent
    assert cfg.train.mix[0].speech == (folder / "speech", folder / "more_speech.csv")
    assert cfg.train.mix[0].weight == 2.0 and cfg.cache_dir == folder / "cache"
    vb = folder / "VCTK-DEMAND"
    assert cfg.train.paired[0].dirs == (vb / "noisy_trainset_28spk_wav", vb / "clean_trainset_28spk_wav")
    assert cfg.valid.paired[0].subset == "testset" and cfg.valid.num_items == 200
    assert cfg.snrs_db == (-5, 0, 5, 10, 20, 40) and cfg.segment_size(DspConfig()) == 144_000


def test_relative_paths_and_segment_rounding(tmp_path):
    path = write_toml(tmp_path, MINIMAL)
    mix = load_data_config(path).train.mix[0]
    assert mix.speech == (tmp_path / "conf" / "speech",)
    assert mix.noise == (tmp_path / "noise",)
    assert mix.rir == (Path("/abs/rirs"),)
    assert load_data_config(path).segment_size(DspConfig()) == 48_000  # round(48048) down to a multiple of 480


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("segmnt_s = 3.0", "segmnt_s"),
        ('[[train.mix]]\nspeech = ["s"]\nnoise = ["n"]\nspeach = ["x"]', "train.mix[0].speach"),
        ('[[valid.paired]]\nkind = "folders"\nnoisy_dir = "a"\nclean_dir = "b"\nwieght = 2', "valid.paired[0].wieght"),
        ("[train]\nitems = 3", "train.items"),
        ("[test]\nnum_items = 3", "test"),
    ],
)
def test_unknown_key_is_named_with_the_file(tmp_path, text, key):
    path = write_toml(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"data\.toml: unknown keys: {key} ".replace("[", r"\[").replace("]", r"\]")):
        load_data_config(path)


@pytest.mark.parametrize(
    "text",
    [
        "p_eq = 1.5",
        "p_speed = -0.1",
        "speed_range = [1.2, 0.8]",
        "speed_range = [0, 1.1]",
        "speed_range = [0.9]",
        'channel = "left"',
        "channel = -1",
        "gain_db = [6, -6]",
        "snrs_db = []",
        'snrs_db = ["a"]',
        "segment_s = 0",
        "bandlimit_rates_hz = [0]",
        "seed = 1.5",
        "[[train.mix]]\nspeech = [\"s\"]",  # noise is required
        '[[train.paired]]\nkind = "voicebank"',  # data_dir is required
        '[[train.paired]]\nkind = "voicebank"\ndata_dir = "d"\nsubset = "train"',
        '[[train.paired]]\nkind = "dns"\nnoisy_dir = "a"\nclean_dir = "b"',
        '[[train.mix]]\nspeech = ["s"]\nnoise = ["n"]\nweight = 0',
        "[train]\nnum_items = 0",
        "train = 3",
        "segment_s = [",
    ],
)
def test_invalid_values_are_config_errors_naming_the_file(tmp_path, text):
    with pytest.raises(ConfigError, match=r"data\.toml"):
        load_data_config(write_toml(tmp_path, text))


@pytest.mark.parametrize(("text", "match"), [("segment_s = 0.001", "at least one hop"), ("bandlimit_rates_hz = [48000]", "below 48000")])
def test_settings_that_do_not_fit_the_model_rate_are_refused_when_the_data_is_built(tmp_path, text, match):
    cfg = load_data_config(write_toml(tmp_path, text))  # the file alone does not know the model's rate
    with pytest.raises(ConfigError, match=match):
        cfg.check_rate(DspConfig())


@pytest.mark.parametrize(("text", "what"), [
    ('{"train": [["VCTK_SPEECH.hdf5", 1.0]], "valid": [["VCTK_SPEECH.hdf5", 1.0]]}', "DeepFilterNet's dataset.cfg"),
    ("[train]\nmodel = deepfilternet3\n[df]\nsr = 48000\n", "an INI file (sections train, df"),
])  # fmt: skip
def test_a_deepfilternet_file_is_named_and_points_to_the_hdf5_docs(tmp_path, text, what):
    path = tmp_path / "dataset.cfg"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"dataset\.cfg: this is " + what.replace("(", r"\(")) as err:
        load_data_config(path)
    assert 'docs/training.md, section "DeepFilterNet HDF5 datasets"' in str(err.value)


def test_other_invalid_toml_says_so(tmp_path):
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_data_config(write_toml(tmp_path, "speech = [unclosed"))


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_data_config(tmp_path / "nope.toml")


def test_to_dict_round_trips():
    cfg = DataConfig(
        train=SplitConfig(mix=(MixSource(speech=("/s",), noise=("/n",)),), num_items=10),
        valid=SplitConfig(paired=(PairedSource(kind="folders", noisy_dir="/a", clean_dir="/b"),)),
        cache_dir="/tmp/cache",
        channel=1,
    )
    data = cfg.to_dict()
    assert data["cache_dir"] == "/tmp/cache" and data["train"]["mix"][0]["speech"] == ["/s"]
    assert "num_items" not in data["valid"]  # None values are left out (TOML has no null)
    assert DataConfig.from_dict(data) == cfg

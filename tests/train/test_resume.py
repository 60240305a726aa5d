"""`run_configs`: a resumed run reads its own configs; changes it can take apply, others are refused."""

import pytest

from dfn4core import ConfigError
from dfn4core.train.config import TrainConfig, dump_toml
from dfn4core.train.resume import run_configs

from corpus import corpus_config


@pytest.fixture
def run(tmp_path, corpus):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "train.toml").write_text(dump_toml(TrainConfig(variant="tiny", steps=10, batch_size=2).to_dict()))
    data = corpus_config(corpus, train_items=4, valid_items=2, segment_s=0.5)
    (folder / "data.toml").write_text(dump_toml(data.to_dict()))
    return folder


def test_a_config_file_changes_only_the_keys_it_sets(run, tmp_path):
    config = tmp_path / "more.toml"
    config.write_text("steps = 20\nlog_every = 5\n")  # no variant: the run's tiny stays
    cfg, _ = run_configs(run, resume=True, config=config, num_workers=0)
    assert (cfg.variant, cfg.steps, cfg.log_every, cfg.batch_size, cfg.num_workers) == ("tiny", 20, 5, 2, 0)
    config.write_text("[optim]\nlr = 0.5\n")
    with pytest.raises(ConfigError, match=r"these differ: optim.lr 0.001 -> 0.5; to change them"):
        run_configs(run, resume=True, config=config)


def test_other_data_is_refused_and_the_same_data_accepted(run, tmp_path, corpus):
    same = tmp_path / "same.toml"
    same.write_text((run / "data.toml").read_text())
    _, data = run_configs(run, resume=True, data=same)
    assert data.segment_s == 0.5
    other = tmp_path / "other.toml"
    other.write_text((run / "data.toml").read_text().replace("segment_s = 0.5", "segment_s = 1.0"))
    with pytest.raises(ConfigError, match=r"its data.toml, and these differ: segment_s 0.5 -> 1.0"):
        run_configs(run, resume=True, data=other)


def test_nothing_to_resume(tmp_path):
    with pytest.raises(ConfigError, match="nothing to resume"):
        run_configs(tmp_path, resume=True)

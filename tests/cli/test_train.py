from typer.testing import CliRunner

from dfn4cli.main import app

from corpus import write_corpus

runner = CliRunner()


def _data_toml(tmp_path):
    dirs = write_corpus(tmp_path / "corpus", n_speech=3)
    path = tmp_path / "data.toml"
    path.write_text(
        f"""segment_s = 0.3
p_bandlimit = 0.0
[train]
num_items = 4
[[train.mix]]
speech = ["{dirs['speech']}"]
noise = ["{dirs['noise']}"]
[valid]
num_items = 2
[[valid.mix]]
speech = ["{dirs['valid_speech']}"]
noise = ["{dirs['valid_noise']}"]
"""
    )
    return path


def test_train_help():
    result = runner.invoke(app, ["train", "--help"])
    assert result.exit_code == 0 and "--resume" in result.output and "--data" in result.output


def test_train_and_resume_from_the_command_line(tmp_path):
    data, out = _data_toml(tmp_path), tmp_path / "run"
    config = tmp_path / "train.toml"
    config.write_text("gan_start_step = 1\nvalid_every = 2\nckpt_every = 1\n[optim]\nwarmup_steps = 1\n")
    args = ["train", "--data", str(data), "--out", str(out), "--config", str(config), "--variant", "tiny",
            "--batch-size", "2", "--num-workers", "0", "--device", "cpu"]  # fmt: skip
    first = runner.invoke(app, [*args, "--steps", "2"])
    assert first.exit_code == 0, first.output
    assert "2 steps" in first.output and (out / "best.pt").exists()
    again = runner.invoke(app, [*args, "--steps", "3"])
    assert again.exit_code == 1 and "already holds a run" in again.output
    resumed = runner.invoke(app, [*args, "--steps", "3", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "3 steps" in resumed.output


def test_unknown_config_key_is_one_clear_line(tmp_path):
    data = _data_toml(tmp_path)
    config = tmp_path / "bad.toml"
    config.write_text("learning_rate = 1\n")
    result = runner.invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "o"), "--config", str(config)])
    assert result.exit_code == 1 and "unknown keys: learning_rate" in result.output


def test_deepfilternets_dataset_cfg_is_named_with_the_docs_to_read(tmp_path):
    (tmp_path / "dataset.cfg").write_text('{"train": [["VCTK_SPEECH.hdf5", 1.0]], "valid": [], "test": []}')
    result = runner.invoke(app, ["train", "--data", str(tmp_path / "dataset.cfg"), "--out", str(tmp_path / "run"), "--device", "cpu"])
    assert result.exit_code == 1
    assert "this is DeepFilterNet's dataset.cfg" in result.stderr and "DeepFilterNet HDF5 datasets" in result.stderr
    assert not (tmp_path / "run").exists()


def test_torchrun_environment_is_read_by_the_cli(monkeypatch):
    from dfn4cli.train import _dist_from_env

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    ctx = _dist_from_env()
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.backend) == (1, 2, 1, "gloo")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not _dist_from_env().enabled

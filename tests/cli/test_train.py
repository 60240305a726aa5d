import os
import signal

import pytest
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


def _snapshot(run):
    return {p.relative_to(run): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def _tiny_run(tmp_path, steps="2"):
    """A finished 2-step run of the tiny variant, started with --variant (its config file does not say it)."""
    data, out, config = _data_toml(tmp_path), tmp_path / "run", tmp_path / "train.toml"
    config.write_text("valid_every = 0\nckpt_every = 100\nlog_every = 1\n[optim]\nwarmup_steps = 1\n")
    args = ["train", "--data", str(data), "--out", str(out), "--config", str(config), "--variant", "tiny",
            "--batch-size", "2", "--num-workers", "0", "--device", "cpu", "--steps", steps]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return data, out, config


def test_resume_takes_the_runs_own_configs_and_extends_it(tmp_path):
    data, out, config = _tiny_run(tmp_path)
    # The resume command of docs/training.md: no --variant, so the config file alone would build a full model.
    docs = runner.invoke(app, ["train", "--data", str(data), "--config", str(config), "--out", str(out), "--resume"])
    assert docs.exit_code == 0, docs.output
    assert "2 steps" in docs.output
    longer = runner.invoke(app, ["train", "--out", str(out), "--resume", "--steps", "3"])  # no --data, no --config
    assert longer.exit_code == 0, longer.output
    assert "3 steps" in longer.output
    from dfn4core.train.config import load_train_config

    saved = load_train_config(out / "train.toml")
    assert (saved.steps, saved.variant, saved.batch_size) == (3, "tiny", 2)


def test_a_setting_resume_cannot_honour_is_refused(tmp_path):
    _, out, _ = _tiny_run(tmp_path)
    before = _snapshot(out)
    result = runner.invoke(app, ["train", "--out", str(out), "--resume", "--steps", "3", "--lr", "0.5", "--variant", "lite"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: {out} resumes with the settings of its train.toml, and these differ: optim.lr 0.001 -> 0.5, "
        f"variant 'tiny' -> 'lite'; to change them, start a new run from its weights (--init {out}/checkpoints/last.pt)"
    )
    assert _snapshot(out) == before
    new = runner.invoke(app, ["train", "--out", str(tmp_path / "new")])
    assert new.exit_code == 2 and "--data" in new.output and "needed for a new run" in new.output


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_checkpoints_the_current_step_and_prints_the_resume_command(tmp_path, monkeypatch, signum):
    from dfn4cli._render import TrainDisplay

    def signal_at_step_1(self, p):
        if p.step == 1:
            os.kill(os.getpid(), signum)  # as Ctrl-C or `kill` would, while the step runs

    monkeypatch.setattr(TrainDisplay, "update", signal_at_step_1)
    data, out = _data_toml(tmp_path), tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(out), "--variant", "tiny", "--steps", "3", "--batch-size", "2",
            "--num-workers", "0", "--device", "cpu"]  # fmt: skip
    before = signal.getsignal(signal.SIGINT)
    result = runner.invoke(app, args)
    assert result.exit_code == 130
    assert f"interrupted at step 1 (checkpoint {out}/checkpoints/last.pt); resume with: dfn4 train --out {out} --resume" in result.stderr
    import torch

    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["train"]["step"] == 1  # ckpt_every is 1000
    assert signal.getsignal(signal.SIGINT) is before  # the handlers are put back


def test_a_type_error_in_the_config_stops_before_any_data_is_read(tmp_path):
    data = tmp_path / "data.toml"
    data.write_text(f'[[train.mix]]\nspeech = ["{tmp_path}/none"]\nnoise = ["{tmp_path}/none"]\n')  # no audio there
    config = tmp_path / "bad.toml"
    config.write_text("steps = 2.5\n")
    result = runner.invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "o"), "--config", str(config)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {config}: steps must be an integer, got 2.5"
    assert not (tmp_path / "o").exists()


def test_options_reach_the_library_call(tmp_path, monkeypatch):
    import dfn4core.train.runner as library
    from dfn4core.train.runner import TrainResult

    data, config = tmp_path / "data.toml", tmp_path / "train.toml"
    data.write_text("")
    config.write_text("valid_every = 0\n")
    seen = {}

    def fake(cfg, data_cfg, out, **kwargs):
        seen.update(cfg=cfg, data_cfg=data_cfg, out=out, **kwargs)
        return TrainResult(None, out, cfg.steps, 0, out / "checkpoints" / "last.pt", None, None)

    monkeypatch.setattr(library, "train", fake)
    monkeypatch.setattr("dfn4core.train.resume.load_data_config", lambda path: f"DATA {path.name}")
    args = ["train", "--data", str(data), "-o", str(tmp_path / "run"), "--config", str(config), "--variant", "tiny",
            "--steps", "5", "--init", "full", "--batch-size", "3", "--lr", "0.002", "--seed", "7", "--num-workers", "1",
            "--device", "cpu", "--threads", "1"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    cfg = seen.pop("cfg")
    assert (cfg.variant, cfg.steps, cfg.init, cfg.batch_size, cfg.optim.lr, cfg.seed, cfg.num_workers, cfg.valid_every) == (
        "tiny", 5, "full", 3, 0.002, 7, 1, 0)  # fmt: skip
    assert callable(seen.pop("on_progress")) and callable(seen.pop("should_stop"))
    assert (seen.pop("data_cfg"), seen.pop("out"), str(seen.pop("device"))) == ("DATA data.toml", tmp_path / "run", "cpu")
    assert seen.pop("resume") is False and not seen.pop("dist").enabled and seen == {}

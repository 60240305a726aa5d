import json

import pytest
import torch

from dfn4core import DFN4, CheckpointError, ConfigError, ModelConfig, load_model, save_model
from dfn4core.errors import TrainingInterrupted
from dfn4core.losses import LossConfig
from dfn4core.train.config import OptimConfig, TrainConfig, load_train_config
from dfn4core.train.runner import train

from corpus import Crash, crash_at

CFG = TrainConfig(
    variant="tiny",
    steps=4,
    batch_size=2,
    num_workers=0,
    gan_start_step=2,
    valid_every=2,
    valid_items=2,
    ckpt_every=2,
    log_every=1,
    keep_checkpoints=1,
    optim=OptimConfig(warmup_steps=1),
)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resume_after_a_crash_is_exact(tmp_path, small_data):
    straight = train(CFG, small_data, tmp_path / "a")
    with pytest.raises(Crash):
        train(CFG, small_data, tmp_path / "b", on_progress=crash_at(3))  # dies after the step-2 checkpoint
    resumed = train(CFG, small_data, tmp_path / "b", resume=True)
    assert resumed.step == straight.step == 4
    a, b = _weights(straight.model), _weights(resumed.model)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    da = torch.load(straight.last_checkpoint, weights_only=True)["train"]["disc"]
    db = torch.load(resumed.last_checkpoint, weights_only=True)["train"]["disc"]
    assert all(torch.equal(da[k], db[k]) for k in da)
    # The crashed run's records past its checkpoint were dropped, so each step is logged once.
    steps = [json.loads(line)["step"] for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    train_steps = [s for s, line in zip(steps, (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()) if '"train"' in line]
    assert train_steps == [1, 2, 3, 4]


def test_run_directory_contents(tmp_path, small_data):
    result = train(CFG, small_data, tmp_path / "run")
    run = tmp_path / "run"
    assert load_train_config(run / "train.toml") == CFG
    assert (run / "data.toml").exists()
    assert [p.name for p in (run / "checkpoints").glob("step_*.pt")] == ["step_00000004.pt"]
    best = load_model(result.best_checkpoint)
    assert best.cfg == CFG.model_config()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in rows if r["kind"] == "valid"]
    assert [r["step"] for r in valid] == [2, 4]
    assert all(k in valid[0] for k in ("valid_loss", "si_sdr", "si_sdr_noisy", "valid_spec_mag", "pesq", "pesq_noisy"))
    assert 1.0 <= valid[0]["pesq"] <= 4.7
    train_rows = [r for r in rows if r["kind"] == "train"]
    assert "disc" not in train_rows[0] and "disc" in train_rows[-1]  # GAN from step 2 on
    assert "adv" in train_rows[-1] and "feature_match" in train_rows[-1]


def test_refuses_to_clobber_or_resume_nothing(tmp_path, small_data):
    with pytest.raises(ConfigError, match="nothing to resume"):
        train(CFG, small_data, tmp_path / "empty", resume=True)
    train(CFG.replace(steps=1, valid_every=0), small_data, tmp_path / "run")
    with pytest.raises(ConfigError, match="already holds a run"):
        train(CFG, small_data, tmp_path / "run")


def test_generator_only_without_gan_weights(tmp_path, small_data):
    loss = LossConfig.from_dict({"weights": {"adv": 0.0, "feature_match": 0.0}})
    result = train(CFG.replace(loss=loss, valid_every=0), small_data, tmp_path / "run")
    assert torch.load(result.last_checkpoint, weights_only=True)["train"]["disc"] is None


def test_init_starts_from_the_given_weights(tmp_path, small_data):
    source = DFN4(ModelConfig.tiny())
    with torch.no_grad():
        for p in source.parameters():
            p.add_(0.5)  # far from any random init
    path = save_model(source, tmp_path / "source.safetensors")
    cfg = CFG.replace(steps=1, valid_every=0, lr=1e-9, lr_min=0.0, init=str(path))
    result = train(cfg, small_data, tmp_path / "run")
    start = dict(source.named_parameters())
    for name, p in result.model.named_parameters():  # one step at lr 1e-9 moves nothing visible
        torch.testing.assert_close(p.detach(), start[name].detach(), atol=1e-6, rtol=0)
    assert load_train_config(tmp_path / "run" / "train.toml").init == str(path)


def test_init_with_another_model_config_is_a_clear_error(tmp_path, small_data):
    with pytest.raises(ConfigError, match="different model config"):
        train(CFG.replace(steps=1, valid_every=0, init="full"), small_data, tmp_path / "run")  # tiny run, full weights


def test_a_partial_last_line_of_metrics_is_dropped_with_a_warning(tmp_path, small_data, caplog):
    cfg = CFG.replace(steps=2, valid_every=0)
    train(cfg, small_data, tmp_path / "run")
    metrics = tmp_path / "run" / "metrics.jsonl"
    whole = metrics.read_text()
    metrics.write_text(whole + '{"time": 1.0, "step": 3, "ki')  # the process died while appending
    train(cfg.replace(steps=3), small_data, tmp_path / "run", resume=True)
    assert "dropping line 3, not a whole record" in caplog.text
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert metrics.read_text().startswith(whole) and [r["step"] for r in rows] == [1, 2, 3]


def test_a_corrupt_last_checkpoint_names_the_newest_readable_one(tmp_path, small_data):
    cfg = CFG.replace(steps=3, valid_every=0, ckpt_every=1, keep_checkpoints=3)
    train(cfg, small_data, tmp_path / "run")
    ckpts = tmp_path / "run" / "checkpoints"
    (ckpts / "last.pt").write_bytes((ckpts / "last.pt").read_bytes()[:5000])  # cut short
    (ckpts / "step_00000003.pt").write_bytes(b"garbage")
    before = {p.name: p.read_bytes() for p in ckpts.iterdir()}
    with pytest.raises(CheckpointError) as err:
        train(cfg.replace(steps=4), small_data, tmp_path / "run", resume=True)
    message = str(err.value)
    assert message.startswith(f"{ckpts / 'last.pt'}: not a readable checkpoint")
    assert message.endswith(
        f"the newest readable checkpoint is {ckpts / 'step_00000002.pt'} (step 2): copy it to {ckpts / 'last.pt'} and resume again"
    )
    assert {p.name: p.read_bytes() for p in ckpts.iterdir()} == before


def test_steps_below_the_checkpoint_are_refused(tmp_path, small_data):
    cfg = CFG.replace(steps=2, valid_every=0)
    train(cfg, small_data, tmp_path / "run")
    with pytest.raises(ConfigError, match="is at step 2 already: steps must be at least 2, got 1"):
        train(cfg.replace(steps=1), small_data, tmp_path / "run", resume=True)


def test_stopping_checkpoints_the_current_step_and_resumes_exactly(tmp_path, small_data):
    cfg = CFG.replace(ckpt_every=100, valid_every=0)
    straight = train(cfg, small_data, tmp_path / "a")
    calls = []
    with pytest.raises(TrainingInterrupted) as err:
        train(cfg, small_data, tmp_path / "b", should_stop=lambda: calls.append(1) or len(calls) >= 3)
    assert err.value.step == 3 and err.value.checkpoint == tmp_path / "b" / "checkpoints" / "last.pt"
    resumed = train(cfg, small_data, tmp_path / "b", resume=True)
    a, b = _weights(straight.model), _weights(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)

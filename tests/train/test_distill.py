import dataclasses

import pytest
import torch

from dfn4core import DFN4, ConfigError, ModelConfig
from dfn4core.data.loader import build_dataset
from dfn4core.losses.distill import DistillConfig, DistillWeights, compressed
from dfn4core.model.checkpoint import save_model
from dfn4core.train.config import OptimConfig, TrainConfig, load_train_config
from dfn4core.train.distill import distill
from dfn4core.train.runner import train

from corpus import Crash, corpus_config, crash_at

STEPS = 6
CFG = TrainConfig(
    variant="tiny",
    steps=STEPS,
    batch_size=2,
    num_workers=0,
    gan_start_step=STEPS,  # generator only: the comparison is about the teacher, not the GAN
    valid_every=0,
    ckpt_every=2,
    keep_checkpoints=0,
    optim=OptimConfig(warmup_steps=1, lr=1e-2),
    distill=DistillConfig(weights=DistillWeights(spec=5e4, df=5e4, erb_gains=10.0, emb=1.0)),
)


@pytest.fixture
def data(corpus):
    return corpus_config(corpus, train_items=8, valid_items=2, segment_s=0.3, p_bandlimit=0.0)


@pytest.fixture
def teacher(tmp_path):
    """A wider tiny model with three DF orders and perturbed weights: output unlike a fresh student's."""
    torch.manual_seed(1)
    model = DFN4(dataclasses.replace(ModelConfig.tiny(), conv_ch=12, emb_dim=48, df_orders=(3, 5, 7))).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model, save_model(model, tmp_path / "teacher.pt")


@torch.no_grad()
def _distance(model, teacher, noisy):
    """MSE of compressed output magnitudes, the distance to the teacher's output."""
    student, target = model.eval()(noisy).spec, teacher(noisy).spec
    return float((compressed(student, 0.3)[0] - compressed(target, 0.3)[0]).pow(2).mean())


def test_distilled_student_ends_closer_to_the_teacher(tmp_path, data, teacher):
    teacher_model, path = teacher
    plain = train(CFG, data, tmp_path / "plain").model
    distilled = distill(CFG, data, tmp_path / "distilled", path).model
    valid = build_dataset(data, "valid")
    noisy = torch.stack([valid[i]["noisy"] for i in range(2)])
    assert _distance(distilled, teacher_model, noisy) < _distance(plain, teacher_model, noisy)
    stored = load_train_config(tmp_path / "distilled" / "train.toml")
    assert stored.distill.teacher == str(path.resolve()) and stored.distill.weights == CFG.distill.weights


def test_resume_with_a_teacher_is_exact(tmp_path, data, teacher):
    cfg = CFG.replace(steps=2, ckpt_every=1)
    straight = distill(cfg, data, tmp_path / "a", teacher[1])
    with pytest.raises(Crash):
        distill(cfg, data, tmp_path / "b", teacher[1], on_progress=crash_at(1))  # after the step-1 checkpoint
    resumed = distill(cfg, data, tmp_path / "b", teacher[1], resume=True)
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    pa = torch.load(straight.last_checkpoint, weights_only=True)["train"]["distill"]
    pb = torch.load(resumed.last_checkpoint, weights_only=True)["train"]["distill"]
    assert set(pa) == {"loss.proj.weight", "loss.proj.bias"} and all(torch.equal(pa[k], pb[k]) for k in pa)


def test_a_shipped_teacher_is_kept_by_name_and_a_file_made_absolute(tmp_path, monkeypatch):
    import dfn4core.train.runner as runner

    seen = []
    monkeypatch.setattr(runner, "train", lambda cfg, data, run_dir, **kw: seen.append(cfg.distill.teacher))
    monkeypatch.chdir(tmp_path)
    distill(TrainConfig(variant="tiny"), None, tmp_path / "a", "full")
    distill(TrainConfig(variant="tiny"), None, tmp_path / "b", "runs/full/best.pt")
    assert seen == ["full", str(tmp_path / "runs" / "full" / "best.pt")]


def test_a_resumed_run_keeps_its_teacher(tmp_path):
    first = save_model(DFN4(ModelConfig.tiny()), tmp_path / "first.pt")
    cfg = dataclasses.replace(CFG, distill=dataclasses.replace(CFG.distill, teacher=str(first)))
    with pytest.raises(ConfigError, match=f"the run distils from {first}, not {tmp_path / 'other.pt'}: a resumed run keeps"):
        distill(cfg, None, tmp_path / "run", tmp_path / "other.pt", resume=True)
    assert not (tmp_path / "run").exists()

import torch

from dfn4core import DFN4, ModelConfig
from dfn4core.losses import GeneratorLoss, LossConfig
from dfn4core.train.distributed import DistContext
from dfn4core.train.loop import StepContext, train_step

CTX = StepContext(torch.device("cpu"), DistContext(), grad_clip=1.0, autocast_dtype=None, scaler=None)


def _batch(noisy_scale=1.0):
    clean = 0.1 * torch.randn(2, 480 * 10)
    noise = 0.05 * torch.randn(2, 480 * 10)
    return {"noisy": (clean + noise) * noisy_scale, "clean": clean, "noise": noise}


def _setup():
    model = DFN4(ModelConfig.tiny()).train()
    loss_fn = GeneratorLoss(LossConfig(), model.cfg)
    return model, loss_fn, torch.optim.AdamW(model.parameters(), lr=1e-3)


def test_a_step_changes_the_weights_and_names_its_terms():
    model, loss_fn, opt = _setup()
    before = [p.clone() for p in model.parameters()]
    terms, fake = train_step(model, loss_fn, _batch(), opt, CTX)
    assert {"spec_mag", "spec_complex", "lsnr", "total"} <= terms.keys()
    assert fake.shape == (2, 4800) and not fake.requires_grad
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_a_nan_batch_is_skipped_and_the_weights_are_kept():
    model, loss_fn, opt = _setup()
    train_step(model, loss_fn, _batch(), opt, CTX)  # optimizer state exists now
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k}
    assert train_step(model, loss_fn, _batch(noisy_scale=float("nan")), opt, CTX) is None
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(torch.isfinite(p).all() for p in model.parameters())

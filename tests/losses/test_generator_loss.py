"""GeneratorLoss: enabled names only, finite, aligned with the model delay, backprop through DFN4."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dfn4core import DFN4, ModelConfig
from dfn4core.errors import ConfigError
from dfn4core.losses import (
    DnsmosConfig,
    GeneratorLoss,
    LossConfig,
    LossWeights,
    MultiPeriodDiscriminator,
    SiSdrLoss,
    aligned_pair,
)
from dfn4core.metrics.sdr import si_sdr
from dfn4core.model.dfnet4 import DFN4Output

TINY = ModelConfig.tiny()
DSP = TINY.dsp


def _batch(steps: int = 20, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.arange(steps * DSP.hop_size) / DSP.sr
    envelope = 1 + torch.sin(2 * math.pi * 4 * t)
    clean = torch.stack([0.1 * torch.sin(2 * math.pi * f * t) * envelope for f in (180, 260)][:batch])
    return clean, 0.02 * torch.randn_like(clean)


def _fake_output(wave: torch.Tensor) -> DFN4Output:
    b, t = wave.shape[0], wave.shape[1] // DSP.hop_size
    zeros = torch.zeros
    return DFN4Output(wave, zeros(b, t, DSP.n_freqs, 2), zeros(b, t, 1), zeros(b, t), zeros(b, t, 2), zeros(b, t, 1))


def test_backprop_through_the_model_with_only_enabled_terms():
    model = DFN4(TINY)
    clean, noise = _batch()
    loss = GeneratorLoss(LossConfig(), TINY)
    disc = MultiPeriodDiscriminator(LossConfig(mpd_channels=(4, 8)))
    out = model(clean + noise)
    without = loss(out, clean, noise)
    assert set(without) == {"spec_mag", "spec_complex", "lsnr"}
    terms = loss(out, clean, noise, disc)
    assert set(terms) == {"spec_mag", "spec_complex", "lsnr", "adv", "feature_match"}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in terms.values())
    sum(terms.values()).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads) and sum(g.abs().sum() for g in grads) > 0


def test_zero_weights_drop_terms():
    cfg = LossConfig(weights=LossWeights(spec_complex=0.0, lsnr=0.0, adv=0.0, feature_match=0.0))
    loss = GeneratorLoss(cfg, TINY)
    clean, noise = _batch()
    terms = loss(_fake_output(clean), clean, noise, MultiPeriodDiscriminator(LossConfig(mpd_channels=(4,))))
    assert set(terms) == {"spec_mag"} and loss.lsnr is None
    assert GeneratorLoss(LossConfig(weights=LossWeights(spec_mag=0, spec_complex=0)), TINY).spectral is None


def test_target_is_the_clean_signal_delayed_by_the_model_delay():
    clean, noise = _batch()
    loss = GeneratorLoss(LossConfig(weights=LossWeights(lsnr=0.0)), TINY)
    delayed = F.pad(clean, (DSP.delay_size, 0))[:, : clean.shape[1]]
    delayed[:, : DSP.delay_size] = 1.0  # before the first output sample: ignored
    terms = loss(_fake_output(delayed), clean, noise)
    assert terms["spec_mag"] == 0 and terms["spec_complex"] == 0
    assert loss(_fake_output(clean), clean, noise)["spec_mag"] > 0  # undelayed: misaligned
    enhanced, target = aligned_pair(delayed, clean, DSP)
    assert enhanced.shape == target.shape == (2, clean.shape[1] - DSP.delay_size)
    with pytest.raises(ValueError):
        aligned_pair(clean[:, : DSP.delay_size], clean[:, : DSP.delay_size], DSP)
    with pytest.raises(ValueError):
        aligned_pair(clean, clean[:1], DSP)


def test_si_sdr_term_is_minus_the_metric_of_the_aligned_output():
    clean, noise = _batch()
    loss = GeneratorLoss(LossConfig(weights=LossWeights(spec_mag=0, spec_complex=0, lsnr=0, si_sdr=0.5)), TINY)
    delayed = F.pad(clean + 0.1 * noise, (DSP.delay_size, 0))[:, : clean.shape[1]]
    term = loss(_fake_output(delayed), clean, noise)["si_sdr"]
    enhanced, target = aligned_pair(delayed, clean, DSP)
    expected = np.mean([si_sdr(t.numpy(), e.numpy(), DSP.sr) for t, e in zip(target, enhanced)])
    assert set(loss(_fake_output(delayed), clean, noise)) == {"si_sdr"}
    assert term.item() == pytest.approx(-0.5 * expected, abs=1e-3) and 10 < expected < 50
    # Scale-invariant; an exact copy is capped; more noise scores worse.
    assert loss(_fake_output(3 * delayed), clean, noise)["si_sdr"].item() == pytest.approx(term.item(), abs=1e-3)
    exact = F.pad(clean, (DSP.delay_size, 0))[:, : clean.shape[1]]
    assert loss(_fake_output(exact), clean, noise)["si_sdr"].item() == pytest.approx(-0.5 * 50.0)
    noisier = F.pad(clean + noise, (DSP.delay_size, 0))[:, : clean.shape[1]]
    assert loss(_fake_output(noisier), clean, noise)["si_sdr"] > term


def test_si_sdr_term_leaves_out_silent_references_and_backprops():
    clean, noise = _batch()
    loss = SiSdrLoss()
    silent = clean.clone()
    silent[1] = 0.0
    est = (clean + noise).requires_grad_(True)
    assert loss(est, silent).item() == pytest.approx(loss(est[:1], clean[:1]).item())
    value = loss(est, torch.zeros_like(clean))
    value.backward()
    assert value.item() == 0.0 and est.grad is not None and not est.grad.any()
    model = DFN4(TINY)
    terms = GeneratorLoss(LossConfig(weights=LossWeights(si_sdr=0.1)), TINY)(model(clean + noise), clean, noise)
    terms["si_sdr"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    with pytest.raises(ConfigError, match="si_sdr_max_db"):
        LossConfig(si_sdr_max_db=0)


def test_perceptual_terms_when_enabled():
    pytest.importorskip("onnx")
    cfg = LossConfig(weights=LossWeights(dnsmos=0.1, speaker=0.1), dnsmos=DnsmosConfig(mix=(1, 1, 2), max_windows=1))
    try:
        loss = GeneratorLoss(cfg, TINY)
    except ConfigError as err:
        pytest.skip(f"perceptual packages absent: {err}")
    clean, noise = _batch(steps=50, batch=1)
    wave = (F.pad(clean, (DSP.delay_size, 0))[:, : clean.shape[1]] + 0.01 * noise).requires_grad_()
    terms = loss(_fake_output(wave), clean, noise)
    assert set(terms) == {"spec_mag", "spec_complex", "lsnr", "dnsmos", "speaker"}
    assert all(torch.isfinite(v) for v in terms.values())
    assert 0 < terms["dnsmos"] < 0.1 * 5
    assert terms["dnsmos"].requires_grad  # its backward is tested in test_dnsmos_torch.py
    terms["speaker"].backward()
    assert torch.isfinite(wave.grad).all() and wave.grad[:, DSP.delay_size :].abs().sum() > 0

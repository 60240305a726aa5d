"""Multi-resolution compressed spectral loss, local-SNR target (value and framing) and loss."""

import math

import pytest
import torch
from testaudio import speech_like

from dfn4core import DFN4, ModelConfig
from dfn4core.config import DspConfig
from dfn4core.losses import LocalSnrLoss, MultiResSpectralLoss, local_snr_target

DSP = DspConfig()
HOP = DSP.hop_size


def _speech_like(n: int, seed: int = 0) -> torch.Tensor:
    """(1, n) at 48 kHz: `testaudio.speech_like` as a tensor."""
    return torch.from_numpy(speech_like(n / DSP.sr, DSP.sr, seed))[None]


def test_spectral_loss_is_zero_for_identical_and_grows_with_noise():
    loss = MultiResSpectralLoss()
    clean = _speech_like(24_000)
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    mag, cplx = loss(clean, clean)
    assert mag == 0 and cplx == 0
    values = [sum(loss(clean + 10 ** (-snr / 20) * clean.std() * noise, clean)) for snr in (30, 10, 0)]
    assert 0 < values[0] < values[1] < values[2]


def test_gamma_compression_of_magnitude_and_phase():
    loss = MultiResSpectralLoss((512,), gamma=0.3)
    x = _speech_like(8_000)
    spec = torch.stft(x, 512, 128, window=torch.hann_window(512), normalized=True, return_complex=True)
    spec = torch.view_as_real(spec)
    mag = spec.square().sum(-1).sqrt()
    mag_c, spec_c = loss.compress(x, 512)
    torch.testing.assert_close(mag_c, mag.pow(0.3), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(spec_c, spec * (mag.pow(0.3) / mag).unsqueeze(-1), rtol=1e-4, atol=1e-6)


def test_compressed_loss_scales_as_gain_to_twice_gamma():
    loss = MultiResSpectralLoss((256, 1024), gamma=0.3)
    x, y = _speech_like(9_600, 0), _speech_like(9_600, 1) * 0.5
    base = torch.stack(loss(x, y))
    torch.testing.assert_close(torch.stack(loss(4 * x, 4 * y)), base * 4**0.6, rtol=1e-4, atol=0)


def test_spectral_gradient_is_finite_at_digital_silence():
    est = torch.zeros(1, 4_800, requires_grad=True)
    sum(MultiResSpectralLoss()(est, _speech_like(4_800))).backward()
    assert torch.isfinite(est.grad).all() and est.grad.abs().sum() > 0


def test_lsnr_target_of_a_10_db_mix_is_10_db():
    n = 100 * HOP
    t = torch.arange(n) / 48_000
    clean = (0.1 * torch.sin(2 * math.pi * 440 * t))[None]
    noise = torch.randn(1, n, generator=torch.Generator().manual_seed(0))
    noise = noise * clean.pow(2).mean().sqrt() / noise.pow(2).mean().sqrt() / math.sqrt(10)
    target, valid = local_snr_target(clean, noise, DSP)
    steady = target[:, DSP.lookahead + 2 :]  # past the frames that hold zeros before the start
    assert steady.mean().item() == pytest.approx(10.0, abs=0.2)
    assert (steady - 10).abs().max() < 1.5
    assert valid[:, : DSP.lookahead].logical_not().all() and valid[:, DSP.lookahead :].all()


def test_lsnr_target_is_shifted_by_the_lookahead():
    start_frame, steps = 10, 30
    clean = torch.zeros(1, steps * HOP)
    clean[:, start_frame * HOP :] = 0.1  # input frame j spans samples [(j-1) hop, (j+1) hop)
    noise = 1e-3 * torch.randn(1, steps * HOP, generator=torch.Generator().manual_seed(0))
    target, _ = local_snr_target(clean, noise, DSP, -15.0, 35.0)
    first = start_frame + DSP.lookahead  # output frame k describes input frame k - lookahead
    assert (target[0, :first] == -15.0).all()
    assert (target[0, first:] > 20).all()


def test_lsnr_target_has_the_model_output_framing():
    model = DFN4(ModelConfig.tiny()).eval()
    clean, noise = _speech_like(12 * HOP), 0.01 * torch.randn(1, 12 * HOP)
    with torch.no_grad():
        out = model(clean + noise)
    target, valid = local_snr_target(clean, noise, model.cfg.dsp)
    assert target.shape == valid.shape == out.lsnr_db.shape
    with pytest.raises(ValueError):
        local_snr_target(clean, noise[:, :HOP], DSP)
    with pytest.raises(ValueError):
        local_snr_target(clean[:, :100], noise[:, :100], DSP)


def test_lsnr_loss_ignores_frames_before_the_start():
    clean, noise = _speech_like(20 * HOP), 0.01 * torch.randn(1, 20 * HOP)
    target, _ = local_snr_target(clean, noise, DSP)
    pred = target.clone()
    pred[:, : DSP.lookahead] = 99.0
    loss = LocalSnrLoss(DSP)
    assert loss(pred, clean, noise) == 0
    pred[:, -1] += 2.0
    torch.testing.assert_close(loss(pred, clean, noise), torch.tensor(4.0 / (20 - DSP.lookahead)))
    with pytest.raises(ValueError):
        loss(pred[:, :-1], clean, noise)

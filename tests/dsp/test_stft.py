import math

import pytest
import torch

from dfn4core.dsp.stft import Stft, vorbis_window


def test_vorbis_window_is_power_complementary():
    w = vorbis_window(960)
    torch.testing.assert_close(w[:480] ** 2 + w[480:] ** 2, torch.ones(480, dtype=w.dtype), atol=1e-12, rtol=0)


@pytest.mark.parametrize("matmul_dft", [False, True])
def test_perfect_reconstruction_after_delay(matmul_dft):
    stft = Stft(960, 480)
    stft.matmul_dft = matmul_dft
    x = torch.randn(2, 480 * 40)
    state = stft.init_state(2)
    spec, _, _ = stft.analysis(x, state["analysis"])
    y, _ = stft.synthesis(spec, state["synthesis"])
    delay = 960 - 480
    assert (y[:, delay:] - x[:, :-delay]).abs().max() < 1e-5


def test_fft_and_matmul_dft_agree():
    fft, matmul = Stft(960, 480), Stft(960, 480)
    matmul.matmul_dft = True
    x, buf = torch.randn(2, 480 * 6), torch.zeros(2, 480)
    spec_fft, _, _ = fft.analysis(x, buf)
    spec_mm, _, _ = matmul.analysis(x, buf)
    torch.testing.assert_close(spec_mm, spec_fft, atol=1e-6, rtol=0)
    out_fft, _ = fft.synthesis(spec_fft, buf)
    out_mm, _ = matmul.synthesis(spec_fft, buf)
    torch.testing.assert_close(out_mm, out_fft, atol=1e-5, rtol=0)


@pytest.mark.parametrize("matmul_dft", [False, True])
def test_hop_by_hop_equals_whole_signal(matmul_dft):
    """One hop takes its own path (no framing of several hops); it gives the same frames, spectra,
    samples and buffers as the whole signal."""
    stft = Stft(960, 480)
    stft.matmul_dft = matmul_dft
    x = torch.randn(1, 480 * 12)
    state = stft.init_state(1)
    whole, whole_frames, ana_whole = stft.analysis(x, state["analysis"])
    out_whole, syn_whole = stft.synthesis(whole, state["synthesis"])
    ana, syn, specs, frames, outs = state["analysis"], state["synthesis"], [], [], []
    for hop in x.split(480, dim=1):
        spec, frame, ana = stft.analysis(hop, ana)
        out, syn = stft.synthesis(spec, syn)
        specs.append(spec)
        frames.append(frame)
        outs.append(out)
    assert frames[0].shape == (1, 1, 960) and outs[0].shape == (1, 480)
    torch.testing.assert_close(torch.cat(frames, 1), whole_frames, atol=0, rtol=0)
    torch.testing.assert_close(torch.cat(specs, 1), whole, atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.cat(outs, 1), out_whole, atol=1e-5, rtol=0)
    torch.testing.assert_close(ana, ana_whole, atol=0, rtol=0)
    torch.testing.assert_close(syn, syn_whole, atol=1e-5, rtol=0)


def test_dft_matches_a_float64_reference():
    stft = Stft(960, 480)
    x = torch.randn(1, 480 * 4)
    spec, frames, _ = stft.analysis(x.float(), torch.zeros(1, 480))
    ref = torch.fft.rfft(frames.double() * vorbis_window(960), dim=-1) * (2 * 480 / 960**2)
    torch.testing.assert_close(spec.double(), torch.view_as_real(ref), atol=1e-6, rtol=0)


def test_sine_lands_in_its_bin():
    stft = Stft(960, 480)
    k = 37  # bin spacing is 50 Hz at 48 kHz
    x = torch.sin(2 * math.pi * k * 50 * torch.arange(480 * 6) / 48_000)[None]
    spec, _, _ = stft.analysis(x, torch.zeros(1, 480))
    mag = spec[0, -1].pow(2).sum(-1)
    assert int(mag.argmax()) == k


def test_rejects_other_overlaps():
    with pytest.raises(ValueError, match="50 %"):
        Stft(960, 240)

"""Spectral losses (DFN3): multi-resolution compressed spectra, and the local-SNR target and loss.

The local-SNR target is computed with the model's own analysis framing (Vorbis window, fft_size
samples per frame, one frame per hop, zeros before the start) and shifted by the lookahead, so that
target frame k sits under `DFN4Output.lsnr_db[:, k]`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dfn4core.config import DspConfig, ModelConfig
from dfn4core.dsp.stft import vorbis_window

# Below this, |X| is treated as this: keeps |X|^(gamma - 1) and the gradient of |X| finite at 0.
_MAG_FLOOR = 1e-12
# Frame energies are floored here before their ratio, so silent speech and silent noise give 0 dB.
_ENERGY_FLOOR = 1e-10


class MultiResSpectralLoss(nn.Module):
    """DFN3's multi-resolution spectral loss on waveforms, unweighted.

    For each FFT size n (Hann window, hop n/4, orthonormal STFT), the MSE of the compressed
    magnitudes |X|^gamma and the MSE of the compressed complex spectra X / |X| * |X|^gamma (real
    and imaginary parts); each is summed over the resolutions.

    Args:
        fft_sizes: FFT sizes, each a multiple of 4.
        gamma: compression exponent in (0, 1]; 1 compares plain spectra.

    Shapes: est, target (B, N) with N > max(fft_sizes) / 2 -> (magnitude term, complex term), scalars.
    """

    def __init__(self, fft_sizes: tuple[int, ...] = (256, 512, 1024, 2048), gamma: float = 0.3):
        super().__init__()
        self.fft_sizes, self.gamma = tuple(fft_sizes), gamma
        for n in self.fft_sizes:
            self.register_buffer(f"window_{n}", torch.hann_window(n), persistent=False)

    def compress(self, x: Tensor, n_fft: int) -> tuple[Tensor, Tensor]:
        """Compressed magnitude (B, F, T) and compressed real/imag spectrum (B, F, T, 2) of x (B, N)."""
        window = getattr(self, f"window_{n_fft}")
        spec = torch.stft(x, n_fft, n_fft // 4, window=window, normalized=True, return_complex=True)
        spec = torch.view_as_real(spec)
        mag = (spec.square().sum(-1) + _MAG_FLOOR**2).sqrt()
        mag_c = mag.pow(self.gamma)
        return mag_c, spec * (mag_c / mag).unsqueeze(-1)

    def forward(self, est: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        if est.shape != target.shape or est.dim() != 2:
            shapes = f"{tuple(est.shape)}, {tuple(target.shape)}"
            raise ValueError(f"est and target must be the same (B, N) shape, got {shapes}")
        mag_loss = est.new_zeros(())
        complex_loss = est.new_zeros(())
        for n in self.fft_sizes:
            est_mag, est_spec = self.compress(est, n)
            target_mag, target_spec = self.compress(target, n)
            mag_loss = mag_loss + F.mse_loss(est_mag, target_mag)
            complex_loss = complex_loss + F.mse_loss(est_spec, target_spec)
        return mag_loss, complex_loss


def frame_energy(wave: Tensor, dsp: DspConfig) -> Tensor:
    """Energy of each analysis frame of the model (Vorbis-windowed, zeros before the start).

    Input frame j holds samples [(j - 1) * hop, (j + 1) * hop), as `Stft.analysis` frames them.

    Shapes: wave (B, T * hop) -> (B, T).
    """
    hop, size = dsp.hop_size, dsp.fft_size
    if wave.dim() != 2 or wave.shape[1] == 0 or wave.shape[1] % hop:
        raise ValueError(f"wave must be (batch, n * {hop}) with n >= 1, got {tuple(wave.shape)}")
    padded = F.pad(wave, (size - hop, 0))
    frames = padded.unfold(1, size, hop)  # B, T, N
    window = vorbis_window(size, dtype=wave.dtype).to(wave.device)
    return (frames * window).square().sum(-1)


def local_snr_target(
    clean: Tensor,
    noise: Tensor,
    dsp: DspConfig,
    min_db: float = ModelConfig.lsnr_min_db,
    max_db: float = ModelConfig.lsnr_max_db,
) -> tuple[Tensor, Tensor]:
    """Per-frame SNR of the input mix in dB, in the framing of `DFN4Output.lsnr_db`.

    Output frame k describes input frame k - lookahead (the model emits frame k - L at step k), so
    the first `lookahead` frames describe nothing: they hold `min_db` and are False in the mask.

    Args:
        clean: the speech part of the model input.
        noise: the noise part of the model input (noisy = clean + noise).
        dsp: the model's signal chain (hop, fft size, lookahead).
        min_db: lower clamp, the model's `lsnr_min_db`.
        max_db: upper clamp, the model's `lsnr_max_db`.

    Returns:
        (target_db, valid): the clamped SNR and where it is defined.

    Shapes: clean, noise (B, T * hop) -> target_db (B, T) float, valid (B, T) bool.
    """
    if clean.shape != noise.shape:
        raise ValueError(f"clean and noise must have the same shape, got {tuple(clean.shape)}, {tuple(noise.shape)}")
    speech_energy = frame_energy(clean, dsp).clamp_min(_ENERGY_FLOOR)
    noise_energy = frame_energy(noise, dsp).clamp_min(_ENERGY_FLOOR)
    snr_db = (10 * torch.log10(speech_energy / noise_energy)).clamp(min_db, max_db)
    lookahead = min(dsp.lookahead, snr_db.shape[1])
    target = F.pad(snr_db, (lookahead, 0), value=min_db)[:, : snr_db.shape[1]]
    valid = torch.ones_like(target, dtype=torch.bool)
    valid[:, :lookahead] = False
    return target, valid


class LocalSnrLoss(nn.Module):
    """MSE (dB^2) between the model's local-SNR estimate and `local_snr_target`, over valid frames.

    Args:
        dsp: the model's signal chain.
        min_db: the model's `lsnr_min_db`.
        max_db: the model's `lsnr_max_db`.

    Shapes: lsnr_db (B, T) from `DFN4Output`, clean and noise (B, T * hop) -> scalar.
    """

    def __init__(
        self, dsp: DspConfig, min_db: float = ModelConfig.lsnr_min_db, max_db: float = ModelConfig.lsnr_max_db
    ):
        super().__init__()
        self.dsp, self.min_db, self.max_db = dsp, min_db, max_db

    def forward(self, lsnr_db: Tensor, clean: Tensor, noise: Tensor) -> Tensor:
        with torch.no_grad():
            target, valid = local_snr_target(clean, noise, self.dsp, self.min_db, self.max_db)
        if lsnr_db.shape != target.shape:
            raise ValueError(f"lsnr_db {tuple(lsnr_db.shape)} does not match the input's frames {tuple(target.shape)}")
        weight = valid.to(lsnr_db.dtype)
        return ((lsnr_db - target).square() * weight).sum() / weight.sum().clamp_min(1.0)

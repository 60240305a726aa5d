"""Frame-wise STFT/ISTFT with a Vorbis window and carried buffers.

Complex values are a trailing dimension of 2 everywhere. The DFT itself is torch.fft, or, while
exporting to ONNX, the same transform as small real matmuls (`FactoredRealDft`, a two-stage
Cooley-Tukey split), which any runtime supports; both are tested to agree to float rounding.
The forward scale 2*hop/N^2 matches DeepFilterNet's spectrum level, so feature statistics (for
instance the ERB dB range) carry over; the inverse undoes it exactly.
With a 50 % overlap the Vorbis window satisfies w[n]^2 + w[n + hop]^2 = 1 (Princen-Bradley), so
analysis then synthesis reconstructs the input delayed by fft_size - hop_size samples.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dfn4core.dsp.dft import FactoredRealDft
from dfn4core.state import State


def vorbis_window(size: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """w[n] = sin(pi/2 * sin^2(pi (n + 1/2) / size)), the power-complementary Vorbis window."""
    n = torch.arange(size, dtype=torch.float64)
    return torch.sin(0.5 * math.pi * torch.sin(math.pi * (n + 0.5) / size) ** 2).to(dtype)


class Stft(nn.Module):
    """Analysis and synthesis over whole hops, carrying the overlap buffers as state.

    Shapes: wave (B, T*hop) <-> spec (B, T, F, 2); frames (B, T, N) are the raw (unwindowed)
    samples of each analysis frame. State: "analysis" and "synthesis", each (B, N - hop).
    """

    def __init__(self, fft_size: int = 960, hop_size: int = 480):
        super().__init__()
        if fft_size != 2 * hop_size:
            raise ValueError("Stft supports 50 % overlap only (fft_size == 2 * hop_size)")
        self.fft_size, self.hop_size = fft_size, hop_size
        self.n_freqs = fft_size // 2 + 1
        self.scale = 2 * hop_size / fft_size**2
        # True: always use the matmul DFT (for exporters or runtimes without an FFT op).
        self.matmul_dft = False
        self.dft = FactoredRealDft(fft_size)
        self.register_buffer("window", vorbis_window(fft_size, torch.float32), persistent=False)

    def use_matmul(self) -> bool:
        """The matmul DFT while exporting to ONNX or when `matmul_dft` is set; torch.fft otherwise."""
        return self.matmul_dft or torch.onnx.is_in_onnx_export()

    def init_state(self, batch: int, device=None, dtype=None) -> State:
        size = self.fft_size - self.hop_size
        return {
            "analysis": torch.zeros(batch, size, device=device, dtype=dtype),
            "synthesis": torch.zeros(batch, size, device=device, dtype=dtype),
        }

    def analysis(self, wave: Tensor, buf: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Returns spec (B, T, F, 2), frames (B, T, N) and the new analysis buffer."""
        batch = wave.shape[0]
        x = torch.cat((buf, wave), dim=1)
        if wave.shape[1] == self.hop_size:  # one hop (a streaming step): the frame is buffer + hop
            frames, last = x[:, None], x[:, self.hop_size :]
        else:
            x = x.reshape(batch, -1, self.hop_size)  # B, T+1, hop
            frames, last = torch.cat((x[:, :-1], x[:, 1:]), dim=-1), x[:, -1]
        if self.use_matmul():
            spec = self.dft(frames * (self.window * self.scale))
        else:
            spec = torch.view_as_real(torch.fft.rfft(frames * self.window) * self.scale)
        return spec, frames, last

    def synthesis(self, spec: Tensor, buf: Tensor) -> tuple[Tensor, Tensor]:
        """Returns wave (B, T*hop) and the new synthesis (overlap-add) buffer."""
        batch = spec.shape[0]
        if self.use_matmul():
            frames = self.dft.inverse(spec) * (self.window / self.scale)  # B, T, N
        else:
            spectrum = torch.view_as_complex(spec.float().contiguous())
            frames = torch.fft.irfft(spectrum, n=self.fft_size).to(spec.dtype) * (self.window / self.scale)
        if frames.shape[1] == 1:  # one frame (a streaming step): its first half plus the buffer
            frame = frames[:, 0]
            return frame[:, : self.hop_size] + buf, frame[:, self.hop_size :]
        tails = torch.cat((buf[:, None], frames[:, :-1, self.hop_size :]), dim=1)
        wave = (frames[:, :, : self.hop_size] + tails).reshape(batch, -1)
        return wave, frames[:, -1, self.hop_size :]

"""Model input features, each a causal recursion whose state is carried between calls.

- ERB feature: band log-power in dB minus its running mean, divided by 40 (DFN3's scaling).
- DF feature: the low complex bins divided by the square root of their running mean magnitude.
- Phase feature: instantaneous frequency (phase advance from the previous frame, demodulated by
  the bin's own advance) and group delay (phase step between neighbouring bins, demodulated by
  the centred window's linear phase), each as a unit phasor (cos, sin): no unwrapping needed.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import Tensor, nn

from dfn4core.config import DspConfig
from dfn4core.dsp.complex import mul_conj
from dfn4core.dsp.erb import erb_matrices, erb_widths
from dfn4core.state import State

ERB_DB_SCALE = 40.0
DB_PER_NEPER = 10.0 / math.log(10.0)  # 10 log10(x) = DB_PER_NEPER * ln(x): one Log node, not Log and Div
POWER_FLOOR = 1e-10
PHASOR_EPS = 1e-12
# The running mean magnitude decays to 0 in long digital silence (about 94 s from its initial
# value); the floor keeps 1/sqrt(mean) finite so the stream never turns to NaN.
DF_MEAN_FLOOR = 1e-12
EMA_BLOCK = 128  # frames per block of the closed-form running mean (bounds the (T, T) matrix)


def ema(x: Tensor, state: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """Running mean m_t = alpha m_{t-1} + (1 - alpha) x_t over dim 1, in blocks of matmuls.

    Shapes: x (B, T, K), state (B, K) -> (B, T, K), new state (B, K).
    """
    if x.shape[1] == 1:  # one frame (a streaming hop): the recursion itself, fewer graph nodes
        out = alpha * state[:, None] + (1 - alpha) * x
        return out, out[:, -1]
    # The weights depend only on the lag: one (block, block) matrix, its corner for a shorter block.
    size = min(x.shape[1], EMA_BLOCK)
    t = torch.arange(size, device=x.device, dtype=x.dtype)
    lag = t[:, None] - t[None, :]
    all_weights = torch.where(lag >= 0, (1 - alpha) * alpha ** lag.clamp(min=0), torch.zeros_like(lag))
    all_decay = alpha ** (t + 1)
    outs = []
    for block in torch.split(x, EMA_BLOCK, dim=1):
        steps = block.shape[1]
        weights, decay = all_weights[:steps, :steps], all_decay[:steps]
        out = torch.matmul(weights, block) + decay[None, :, None] * state[:, None, :]
        outs.append(out)
        state = out[:, -1]
    return torch.cat(outs, dim=1), state


def power(z: Tensor) -> Tensor:
    """|z|^2 of complex (..., 2) -> (...): re^2 + im^2 (on CPU about 3x faster than squaring and
    summing the last dim, the same values); a traced graph keeps Pow and ReduceSum (fewer nodes)."""
    if torch.jit.is_tracing():
        return z.pow(2).sum(-1)
    return z[..., 0].square() + z[..., 1].square()


def _phasor(z: Tensor) -> Tensor:
    """Complex (..., 2) -> unit phasor (..., 2); zero stays zero."""
    return z * torch.rsqrt(power(z).unsqueeze(-1) + PHASOR_EPS)


class Features(nn.Module):
    """Computes the ERB, DF and phase features of a spectrogram, carrying their state.

    Shapes: spec (B, T, F, 2) -> erb (B, 1, T, E), df (B, 2, T, F_df), phase (B, 4, T, F_df), or
    None where `phase` is False (a model without the phase view: neither computed nor carried).
    State: "erb_mean" (B, E), "df_mean" (B, F_df), and with `phase` "prev_df" (B, F_df, 2).
    """

    def __init__(self, dsp: DspConfig, phase: bool = True):
        super().__init__()
        self.dsp, self.phase = dsp, phase
        widths = erb_widths(dsp.sr, dsp.fft_size, dsp.nb_erb, dsp.min_nb_erb_freqs)
        average, expand = erb_matrices(widths)
        self.register_buffer("erb_average", average, persistent=False)
        self.register_buffer("erb_expand", expand, persistent=False)
        # Bin k advances by pi * k per half-frame hop: (-1)^k removes it from the phase advance. The
        # group delay's phasor is negated: a centred window gives X_k / X_(k-1) = -1 for a
        # frame-centred impulse. Per bin: (instantaneous frequency, group delay) x (re, im).
        sign = 1.0 - 2.0 * (torch.arange(dsp.nb_df) % 2).float()
        signs = torch.stack((sign, -torch.ones(dsp.nb_df)), dim=-1)[:, :, None]  # F_df, 2, 1
        self.register_buffer("phase_sign", signs, persistent=False)

    def init_state(self, batch: int, device=None, dtype=None) -> State:
        e, f = self.dsp.nb_erb, self.dsp.nb_df
        state = {
            # DFN3's initial values: a plausible level, so the first second is not far off.
            "erb_mean": torch.linspace(-60.0, -90.0, e, device=device, dtype=dtype).expand(batch, e).clone(),
            "df_mean": torch.linspace(1e-3, 1e-4, f, device=device, dtype=dtype).expand(batch, f).clone(),
        }
        if self.phase:
            state["prev_df"] = torch.zeros(batch, f, 2, device=device, dtype=dtype)
        return state

    def erb_db(self, spec: Tensor) -> Tensor:
        """Band log-power (B, T, E) in dB."""
        return DB_PER_NEPER * torch.log(power(spec) @ self.erb_average + POWER_FLOOR)

    def forward(self, spec: Tensor, state: State) -> tuple[Tensor, Tensor, Tensor | None, State]:
        alpha = self.dsp.norm_alpha
        db = self.erb_db(spec)
        mean, erb_mean = ema(db, state["erb_mean"], alpha)
        erb = ((db - mean) / ERB_DB_SCALE).unsqueeze(1)

        low = spec[:, :, : self.dsp.nb_df]  # B, T, F_df, 2
        mag, df_mean = ema(power(low).sqrt(), state["df_mean"], alpha)
        unit = low * torch.rsqrt(mag.clamp_min(DF_MEAN_FLOOR)).unsqueeze(-1)
        df = rearrange(unit, "b t f c -> b c t f")  # c: real, imaginary
        if not self.phase:
            return erb, df, None, {"erb_mean": erb_mean, "df_mean": df_mean}

        prev = state["prev_df"][:, None]  # the frame before each frame
        if unit.shape[1] > 1:  # (one frame, a streaming hop: no concatenation with an empty slice)
            prev = torch.cat((prev, unit[:, :-1]), dim=1)
        neighbour = torch.cat((unit[:, :, :1], unit[:, :, :-1]), dim=2)
        # Both phase steps at once (one product and one phasor: half the nodes of a streaming hop).
        steps = _phasor(mul_conj(unit.unsqueeze(-2), torch.stack((prev, neighbour), dim=-2))) * self.phase_sign
        phase = rearrange(steps, "b t f k c -> b (k c) t f")
        new_state = {"erb_mean": erb_mean, "df_mean": df_mean, "prev_df": unit[:, -1]}
        return erb, df, phase, new_state

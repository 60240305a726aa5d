"""The hybrid encoder: spectral, waveform and phase views of each frame, fused by attention.

CrossDomainAttention treats the three views of one frame as three tokens; attention never looks
across frames, so the fusion is causal and costs the same per frame in streaming and offline.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import rearrange
from torch import Tensor, nn
from torch.nn import functional as F

from dfn4core.config import ModelConfig
from dfn4core.model.encoder import LocalSnrHead, Skips, SpectralEncoder, flatten_freq
from dfn4core.model.layers import ConvBlock, GroupedLinear
from dfn4core.model.mamba import SqueezedMamba
from dfn4core.state import State, prefixed, sub

WAVE_LOG_FLOOR = 1e-4


class WaveformEncoder(nn.Module):
    """Learned causal analysis of the raw frame (the last fft_size samples, nothing ahead).

    A strided filterbank (kernel K, hop K/2), log-magnitude compression, one strided conv, then a
    grouped linear layer. Shapes: frames (B, T, N) -> (B, T, W), W = cfg.emb_width.

    Consecutive frames overlap (frame t is samples t * hop ... t * hop + N of the signal), and where
    the filterbank's and the conv's strides divide the hop, frame t + 1 repeats most of frame t's
    filterbank and conv outputs. Over several frames the two convs therefore run once over the
    signal and each frame takes its positions from the result: the same numbers, with about half
    the work (`_forward_signal`). One frame (a streaming hop) runs them on the frame.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        k, ch = cfg.wave_kernel, cfg.wave_ch
        self.filterbank = nn.Conv1d(1, ch, k, stride=k // 2, bias=False)
        self.conv = nn.Conv1d(ch, ch, 3, stride=2)
        self.frame_size, self.hop_size = cfg.dsp.fft_size, cfg.dsp.hop_size
        positions = (self.frame_size - k) // (k // 2) + 1  # filterbank outputs per frame
        self.conv_positions = (positions - 3) // 2 + 1  # conv outputs per frame
        self.fc = GroupedLinear(ch * self.conv_positions, cfg.emb_width, cfg.lin_groups)
        # Filterbank positions per hop; frames share positions when it is a whole, even number.
        hop_positions, rest = divmod(self.hop_size, k // 2)
        self.hop_positions = hop_positions if rest == 0 and hop_positions % 2 == 0 else None

    def forward(self, frames: Tensor) -> Tensor:
        if frames.shape[1] > 1 and self.hop_positions is not None and frames.shape[2] == self.frame_size:
            x = self._forward_signal(frames)
        else:
            x = self.filterbank(rearrange(frames, "b t n -> (b t) 1 n"))  # one waveform frame per conv item
            x = F.relu(self.conv(torch.log(x.abs() + WAVE_LOG_FLOOR)))  # (B T), C, P positions
            x = rearrange(x, "(b t) c p -> b t (c p)", b=frames.shape[0])
        return F.relu(self.fc(x))

    def _forward_signal(self, frames: Tensor) -> Tensor:
        """The two convs over the signal the frames cut from. Shapes: (B, T, N) -> (B, T, C * P)."""
        signal = torch.cat((frames[:, 0], frames[:, 1:, self.frame_size - self.hop_size :].flatten(1)), dim=1)
        x = self.filterbank(signal.unsqueeze(1))  # B, C, positions of the signal
        x = F.relu(self.conv(torch.log(x.abs() + WAVE_LOG_FLOOR)))
        # Frame t's conv outputs start at signal position t * hop_positions / 2.
        x = x.unfold(2, self.conv_positions, self.hop_positions // 2)
        return rearrange(x, "b c t p -> b t (c p)")


class PhaseEncoder(nn.Module):
    """Encodes the phase-derivative features of the low bins.

    Shapes: phase (B, 4, T, F_df) -> (B, T, W). Frequency-only convs: no state.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c = cfg.conv_ch // 2
        self.conv0 = ConvBlock(4, c, (1, 3), fstride=2)
        self.conv1 = ConvBlock(c, c, (1, 3), fstride=2)
        self.fc = GroupedLinear(c * cfg.dsp.nb_df // 4, cfg.emb_width, cfg.lin_groups)

    def forward(self, phase: Tensor) -> Tensor:
        x, _ = self.conv0(phase, {})
        x, _ = self.conv1(x, {})
        return F.relu(self.fc(flatten_freq(x)))


class CrossDomainAttention(nn.Module):
    """Self-attention across the domain tokens of each frame, added back to the spectral view.

    The output layer starts at zero, so the block starts as the identity on the spectral token
    (the network starts as its spectral path, e.g. DFN3's) and learns what the other views add.
    Shapes: views, K tensors (B, T, D), one per domain (spectral first) -> (B, T, D).
    """

    def __init__(self, emb_dim: int, attn_dim: int, heads: int, n_domains: int):
        super().__init__()
        self.heads = heads
        self.proj_in = nn.Parameter(torch.empty(n_domains, emb_dim, attn_dim))
        nn.init.normal_(self.proj_in, std=emb_dim**-0.5)
        self.domain = nn.Parameter(torch.zeros(n_domains, attn_dim))
        self.qkv = nn.Linear(attn_dim, 3 * attn_dim)
        self.out = nn.Linear(n_domains * attn_dim, emb_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, views: Sequence[Tensor]) -> Tensor:
        # Matmuls rather than einsums: the same sums, and onnxruntime's Einsum copies its operands on
        # every call (it was a tenth of a streaming hop). One 2-D matmul per domain, so that the
        # INT8 graph stores each projection in 8 bits (`dfn4core.export.onnx_int8`).
        x = torch.stack([view @ proj for view, proj in zip(views, self.proj_in.unbind(0), strict=True)], dim=2)
        x = x + self.domain  # (B, T, K, A)
        q, key, v = rearrange(self.qkv(x), "b t k (s h c) -> s b t h k c", s=3, h=self.heads)  # c = A/H
        scores = (q @ key.transpose(-1, -2)) * q.shape[-1] ** -0.5  # (B, T, H, K, K)
        mixed = rearrange(scores.softmax(-1) @ v, "b t h q c -> b t q (h c)")
        return views[0] + self.out(rearrange(mixed + x, "b t k a -> b t (k a)"))


class HybridEncoder(nn.Module):
    """Spectral + waveform + phase encoders, CrossDomainAttention, SqueezedMamba and the LSNR head.

    With `cfg.views` False only the spectral encoder feeds the SqueezedMamba (DFN3's encoder), and
    `phase` and `frames` are not read (None will do).
    Shapes: erb (B, 1, T, E), df (B, 2, T, F_df), phase (B, 4, T, F_df), frames (B, T, N)
    -> emb (B, T, W), lsnr (B, T), Skips; W = cfg.emb_width.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.spectral = SpectralEncoder(cfg)
        self.views = cfg.views
        if cfg.views:
            self.waveform = WaveformEncoder(cfg)
            self.phase = PhaseEncoder(cfg)
            self.attention = CrossDomainAttention(cfg.emb_width, cfg.attn_dim, cfg.attn_heads, n_domains=3)
        self.temporal = SqueezedMamba(
            cfg.emb_width,
            cfg.emb_dim,
            output_size=cfg.emb_width,
            num_layers=cfg.enc_layers,
            linear_groups=cfg.lin_groups,
            d_state=cfg.d_state,
            d_conv=cfg.d_conv,
            expand=cfg.expand,
            temporal=cfg.temporal,
        )
        self.lsnr = LocalSnrHead(cfg)

    def init_state(self, batch: int, device=None, dtype=None) -> State:
        return {
            **prefixed("spectral", self.spectral.init_state(batch, device, dtype)),
            **prefixed("temporal", self.temporal.init_state(batch, device, dtype)),
        }

    def forward(
        self, erb: Tensor, df: Tensor, phase: Tensor | None, frames: Tensor | None, state: State
    ) -> tuple[Tensor, Tensor, Skips, State]:
        spectral, skips, spectral_state = self.spectral(erb, df, sub(state, "spectral"))
        if self.views:
            spectral = self.attention((spectral, self.waveform(frames), self.phase(phase)))
        emb, temporal_state = self.temporal(spectral, sub(state, "temporal"))
        new_state = {**prefixed("spectral", spectral_state), **prefixed("temporal", temporal_state)}
        return emb, self.lsnr(emb), skips, new_state

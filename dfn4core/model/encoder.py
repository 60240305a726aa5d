"""Spectral conv encoders (ERB and DF paths, DFN3-style) and the local-SNR head."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor, nn
from torch.nn import functional as F

from dfn4core.config import ModelConfig
from dfn4core.model.layers import ConvBlock, GroupedLinear
from dfn4core.state import State, prefixed, sub


@dataclass
class Skips:
    """Encoder activations the decoders reuse (U-Net skips). Shapes (B, C, T, E or E/2, E/4, F_df)."""

    erb0: Tensor
    erb1: Tensor
    erb2: Tensor
    erb3: Tensor
    df0: Tensor


class SpectralEncoder(nn.Module):
    """ERB path: 4 conv blocks down to E/4 bands; DF path: 2 conv blocks down to F_df/2 bins (DFN3's).

    The ERB path's output, flattened, is the spectral embedding; the DF path's goes through a
    grouped linear layer to the same width and is added to it.
    Shapes: erb (B, 1, T, E), df (B, 2, T, F_df) -> (B, T, W) with W = cfg.emb_width, Skips.
    Only the first conv of each path looks back in time (kernel 3 frames), so only they carry state.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c, dsp = cfg.conv_ch, cfg.dsp
        self.nb_erb, self.nb_df = dsp.nb_erb, dsp.nb_df
        self.erb_conv0 = ConvBlock(1, c, (3, 3))
        self.erb_conv1 = ConvBlock(c, c, (1, 3), fstride=2)
        self.erb_conv2 = ConvBlock(c, c, (1, 3), fstride=2)
        self.erb_conv3 = ConvBlock(c, c, (1, 3))
        self.df_conv0 = ConvBlock(2, c, (3, 3))
        self.df_conv1 = ConvBlock(c, c, (1, 3), fstride=2)
        self.df_fc = GroupedLinear(c * dsp.nb_df // 2, cfg.emb_width, cfg.enc_lin_groups)

    def init_state(self, batch: int, device=None, dtype=None) -> State:
        return {
            **prefixed("erb_conv0", self.erb_conv0.init_state(batch, self.nb_erb, device, dtype)),
            **prefixed("df_conv0", self.df_conv0.init_state(batch, self.nb_df, device, dtype)),
        }

    def forward(self, erb: Tensor, df: Tensor, state: State) -> tuple[Tensor, Skips, State]:
        e0, erb_state = self.erb_conv0(erb, sub(state, "erb_conv0"))
        e1, _ = self.erb_conv1(e0, {})
        e2, _ = self.erb_conv2(e1, {})
        e3, _ = self.erb_conv3(e2, {})
        c0, df_state = self.df_conv0(df, sub(state, "df_conv0"))
        c1, _ = self.df_conv1(c0, {})
        emb = flatten_freq(e3) + F.relu(self.df_fc(flatten_freq(c1)))
        new_state = {**prefixed("erb_conv0", erb_state), **prefixed("df_conv0", df_state)}
        return emb, Skips(e0, e1, e2, e3, c0), new_state


class LocalSnrHead(nn.Module):
    """Per-frame local SNR estimate in dB: a sigmoid scaled to [lsnr_min_db, lsnr_max_db].

    Shapes: emb (B, T, D) -> (B, T).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.emb_width, 1)
        self.min_db, self.max_db = cfg.lsnr_min_db, cfg.lsnr_max_db

    def forward(self, emb: Tensor) -> Tensor:
        return torch.sigmoid(self.fc(emb)).squeeze(-1) * (self.max_db - self.min_db) + self.min_db


def flatten_freq(x: Tensor) -> Tensor:
    """(B, C, T, F) -> (B, T, F * C), channels fastest (DFN3's order)."""
    return rearrange(x, "b c t f -> b t (f c)")


def unflatten_freq(x: Tensor, channels: int) -> Tensor:
    """(B, T, F * C) -> (B, C, T, F), the inverse of `flatten_freq`."""
    return rearrange(x, "b t (f c) -> b c t f", c=channels)

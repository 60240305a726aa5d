"""ERB-gain decoder: a temporal block, then a U-Net over ERB bands mirroring the ERB encoder."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dfn4core.config import ModelConfig
from dfn4core.model.deep_filter import PASS_GAIN
from dfn4core.model.encoder import Skips, unflatten_freq
from dfn4core.model.layers import ConvBlock, ConvTransposeBlock
from dfn4core.model.mamba import SqueezedMamba
from dfn4core.state import State, prefixed, sub


class ErbDecoder(nn.Module):
    """Predicts one gain in [0, 1] per ERB band and frame: DFN3's ERB decoder with SqueezedMamba.

    A temporal block maps the embedding to the E/4-band map of the ERB encoder's output, then a
    U-Net mirrors the ERB encoder: each stage adds the encoder's activation through a pathway
    conv (per-channel 1x1, BatchNorm, ReLU) and upsamples.
    Shapes: emb (B, T, W) with Skips -> gains (B, T, E). State: the temporal block's.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c = cfg.conv_ch
        self.conv_ch = c
        self.temporal = SqueezedMamba(
            cfg.emb_width,
            cfg.emb_dim,
            output_size=cfg.emb_width,
            num_layers=cfg.erb_dec_layers,
            linear_groups=cfg.lin_groups,
            d_state=cfg.d_state,
            d_conv=cfg.d_conv,
            expand=cfg.expand,
            temporal=cfg.temporal,
        )
        self.path3, self.path2, self.path1, self.path0 = (ConvBlock(c, c, (1, 1)) for _ in range(4))
        self.up3 = ConvBlock(c, c, (1, 3))
        self.up2 = ConvTransposeBlock(c, c)
        self.up1 = ConvTransposeBlock(c, c)
        self.out = nn.Conv2d(c, 1, (1, 3), padding=(0, 1))
        with torch.no_grad():  # gains start near PASS_GAIN: training starts from the noisy input
            self.out.bias.fill_(math.log(PASS_GAIN / (1 - PASS_GAIN)))

    def init_state(self, batch: int, device=None, dtype=None) -> State:
        return prefixed("temporal", self.temporal.init_state(batch, device, dtype))

    def forward(self, emb: Tensor, skips: Skips, state: State) -> tuple[Tensor, State]:
        x, temporal_state = self.temporal(emb, sub(state, "temporal"))
        x = unflatten_freq(x, self.conv_ch)  # B, C, T, E/4
        x, _ = self.up3(x + self.path3(skips.erb3, {})[0], {})
        x = self.up2(x + self.path2(skips.erb2, {})[0])
        x = self.up1(x + self.path1(skips.erb1, {})[0])
        gains = torch.sigmoid(self.out(x + self.path0(skips.erb0, {})[0]))
        return gains.squeeze(1), prefixed("temporal", temporal_state)

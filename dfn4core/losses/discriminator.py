"""HiFi-GAN's multi-period discriminator, narrowed for CPU training, and its least-squares losses.

Each period discriminator folds the waveform into (N / p, p) and runs 2-D convs along the time
axis only (kernel (k, 1)), so it sees every p-th sample: periodic structure that spectral losses
blur. Losses are means over sub-discriminators (and feature maps), so their scale does not grow
with the number of periods or layers.
"""

from __future__ import annotations

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from dfn4core.losses.config import LossConfig

LRELU_SLOPE = 0.1
KERNEL_SIZE = 5  # HiFi-GAN's kernel along the folded time axis
STRIDE = 3  # HiFi-GAN's stride of the strided convs


class PeriodDiscriminator(nn.Module):
    """One period of the MPD: strided (k, 1) convs over the folded waveform, then a 1-channel score map.

    Args:
        period: fold width p in samples.
        channels: output channels of the strided convs; one more conv keeps the last width.
        kernel_size: kernel length along the folded time axis.
        stride: stride of the strided convs along the folded time axis.

    Shapes: wave (B, N) -> score (B, S), features [(B, C_i, T_i, p)].
    """

    def __init__(
        self,
        period: int,
        channels: tuple[int, ...] = (16, 32, 64, 128),
        kernel_size: int = KERNEL_SIZE,
        stride: int = STRIDE,
    ):
        super().__init__()
        self.period = period
        pad = (kernel_size - 1) // 2
        widths = (1, *channels)
        convs = [
            nn.Conv2d(c_in, c_out, (kernel_size, 1), (stride, 1), (pad, 0)) for c_in, c_out in zip(widths, channels)
        ]
        convs.append(nn.Conv2d(channels[-1], channels[-1], (kernel_size, 1), 1, (pad, 0)))
        self.convs = nn.ModuleList(weight_norm(c) for c in convs)
        self.post = weight_norm(nn.Conv2d(channels[-1], 1, (3, 1), 1, (1, 0)))

    def forward(self, wave: Tensor) -> tuple[Tensor, list[Tensor]]:
        length = wave.shape[1]
        rest = (-length) % self.period
        if rest:
            # Reflect needs rest < length; a shorter wave is padded with zeros instead.
            wave = F.pad(wave[:, None], (0, rest), mode="reflect" if rest < length else "constant")[:, 0]
        x = rearrange(wave, "b (t p) -> b 1 t p", p=self.period)  # HiFi-GAN: one column per phase of the period
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            features.append(x)
        x = self.post(x)
        features.append(x)
        return x.flatten(1), features


class MultiPeriodDiscriminator(nn.Module):
    """HiFi-GAN's MPD: one PeriodDiscriminator per period of `cfg.mpd_periods` (2, 3, 5, 7, 11).

    Args:
        cfg: the loss config; `mpd_periods` and `mpd_channels` (HiFi-GAN: 32, 128, 512, 1024) are used.

    Shapes: wave (B, N) -> scores [(B, S_p)] and features [[(B, C_i, T_i, p)]], one entry per period.
    """

    def __init__(self, cfg: LossConfig | None = None):
        super().__init__()
        cfg = cfg or LossConfig()
        self.periods = cfg.mpd_periods
        self.discriminators = nn.ModuleList(
            PeriodDiscriminator(p, cfg.mpd_channels, KERNEL_SIZE, STRIDE) for p in self.periods
        )

    def forward(self, wave: Tensor) -> tuple[list[Tensor], list[list[Tensor]]]:
        if wave.dim() != 2:
            raise ValueError(f"wave must be (batch, samples), got {tuple(wave.shape)}")
        scores, features = [], []
        for disc in self.discriminators:
            score, feats = disc(wave)
            scores.append(score)
            features.append(feats)
        return scores, features


def discriminator_loss(real_outs: list[Tensor], fake_outs: list[Tensor]) -> Tensor:
    """Least-squares discriminator loss: mean over discriminators of E[(1 - D(real))^2] + E[D(fake)^2].

    Pass the fake scores of a detached generator output, so this trains the discriminator only.
    """
    if len(real_outs) != len(fake_outs) or not real_outs:
        raise ValueError("real_outs and fake_outs must be non-empty lists of the same length")
    total = sum(((1 - r).square().mean() + f.square().mean() for r, f in zip(real_outs, fake_outs, strict=True)))
    return total / len(real_outs)


def generator_adv_loss(fake_outs: list[Tensor]) -> Tensor:
    """Least-squares generator loss: mean over discriminators of E[(1 - D(fake))^2]."""
    if not fake_outs:
        raise ValueError("fake_outs must be a non-empty list")
    return sum((1 - f).square().mean() for f in fake_outs) / len(fake_outs)


def feature_matching_loss(real_feats: list[list[Tensor]], fake_feats: list[list[Tensor]]) -> Tensor:
    """L1 distance between real and fake discriminator features, averaged over every feature map.

    The real features are detached: this loss trains the generator only.
    """
    pairs = [(r, f) for rs, fs in zip(real_feats, fake_feats, strict=True) for r, f in zip(rs, fs, strict=True)]
    if not pairs:
        raise ValueError("real_feats and fake_feats must hold feature maps")
    return sum((r.detach() - f).abs().mean() for r, f in pairs) / len(pairs)

"""DFN4's training losses: `GeneratorLoss` returns every weighted term by name; the discriminator
step uses `MultiPeriodDiscriminator` and `discriminator_loss` on `aligned_pair`'s signals.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dfn4core.config import DspConfig, ModelConfig
from dfn4core.losses.config import DnsmosConfig, LossConfig, LossWeights, SpeakerConfig
from dfn4core.losses.discriminator import (
    MultiPeriodDiscriminator,
    PeriodDiscriminator,
    discriminator_loss,
    feature_matching_loss,
    generator_adv_loss,
)
from dfn4core.losses.dnsmos_torch import DNSMOSProxy, OnnxGraph
from dfn4core.losses.pretrained_input import Downsample
from dfn4core.losses.sdr import SiSdrLoss
from dfn4core.losses.spectral import LocalSnrLoss, MultiResSpectralLoss, local_snr_target
from dfn4core.losses.speaker import SpeakerContrastiveLoss, SpeakerEncoder
from dfn4core.model.dfnet4 import DFN4Output

__all__ = [
    "DNSMOSProxy",
    "DnsmosConfig",
    "Downsample",
    "GeneratorLoss",
    "LocalSnrLoss",
    "LossConfig",
    "LossWeights",
    "MultiPeriodDiscriminator",
    "MultiResSpectralLoss",
    "OnnxGraph",
    "PeriodDiscriminator",
    "SiSdrLoss",
    "SpeakerConfig",
    "SpeakerContrastiveLoss",
    "SpeakerEncoder",
    "aligned_pair",
    "discriminator_loss",
    "feature_matching_loss",
    "generator_adv_loss",
    "local_snr_target",
]


def aligned_pair(enhanced: Tensor, clean: Tensor, dsp: DspConfig) -> tuple[Tensor, Tensor]:
    """The model's output and the clean target on a common time axis, without the start-up part.

    The output wave lags its input by `dsp.delay_size` samples: output sample n + delay is the
    enhanced copy of input sample n. The first `delay` output samples precede any input and are
    dropped; so are the last `delay` clean samples, which the output has not reached yet.

    Shapes: enhanced, clean (B, N) -> both (B, N - delay).
    """
    delay = dsp.delay_size
    if enhanced.shape != clean.shape or enhanced.dim() != 2:
        shapes = f"{tuple(enhanced.shape)}, {tuple(clean.shape)}"
        raise ValueError(f"enhanced and clean must be the same (B, N) shape, got {shapes}")
    if enhanced.shape[1] <= delay:
        raise ValueError(f"signals of {enhanced.shape[1]} samples are too short for the {delay}-sample model delay")
    return enhanced[:, delay:], clean[:, : clean.shape[1] - delay]


class GeneratorLoss(nn.Module):
    """Every generator loss term of `LossConfig` with a positive weight, weighted and named.

    Terms (names as in `LossWeights`): spec_mag, spec_complex (multi-resolution spectral), lsnr,
    adv and feature_match (only when a discriminator is passed), dnsmos, speaker, si_sdr. The
    spectral, SI-SDR, adversarial and perceptual terms compare `out.wave` with the clean signal
    delayed by `dsp.delay_size` (see `aligned_pair`); lsnr compares `out.lsnr_db` with `local_snr_target`.
    Perceptual models (DNSMOS graph, speaker encoder) are built only when their weight is positive.

    Args:
        cfg: weights and settings of the terms.
        model_cfg: the model's config: its signal chain (sample rate, framing, delay) and its
            local-SNR range, which the lsnr target is clamped to.
    Raises:
        ConfigError: a perceptual term is enabled and its package (speechmos + onnx, or
            resemblyzer) is not installed.
    """

    def __init__(self, cfg: LossConfig, model_cfg: ModelConfig):
        super().__init__()
        dsp = model_cfg.dsp
        self.cfg, self.dsp = cfg, dsp
        w = cfg.weights
        self.spectral = MultiResSpectralLoss(cfg.fft_sizes, cfg.gamma) if w.spec_mag > 0 or w.spec_complex > 0 else None
        self.lsnr = LocalSnrLoss(dsp, model_cfg.lsnr_min_db, model_cfg.lsnr_max_db) if w.lsnr > 0 else None
        self.si_sdr = SiSdrLoss(cfg.si_sdr_max_db) if w.si_sdr > 0 else None
        self.dnsmos = None
        if w.dnsmos > 0:
            self.dnsmos = DNSMOSProxy(dsp.sr, cfg.dnsmos.personalized, cfg.dnsmos.max_windows)
            self.register_buffer("dnsmos_mix", torch.tensor(cfg.dnsmos.mix), persistent=False)
        self.speaker = None
        if w.speaker > 0:
            sp = cfg.speaker
            self.speaker = SpeakerContrastiveLoss(
                dsp.sr, sp.temperature, sp.weights_path or None, sp.partial_frames, sp.partial_step_frames
            )

    def forward(
        self, out: DFN4Output, clean: Tensor, noise: Tensor, disc: MultiPeriodDiscriminator | None = None
    ) -> dict[str, Tensor]:
        """The weighted terms of one batch; sum the values for the generator's loss.

        Args:
            out: the model's output for the input clean + noise.
            clean: the speech part of the model input.
            noise: the noise part of the model input.
            disc: the discriminator, for the adv and feature_match terms. Its parameters receive
                gradients from them: zero its gradients before the discriminator's own step.
        Returns:
            {name: scalar tensor} for each enabled term, already multiplied by its weight.

        Shapes: out.wave, clean, noise (B, T * hop); out.lsnr_db (B, T).
        """
        w = self.cfg.weights
        enhanced, target = aligned_pair(out.wave, clean, self.dsp)
        terms: dict[str, Tensor] = {}
        if self.spectral is not None:
            mag, cplx = self.spectral(enhanced, target)
            if w.spec_mag > 0:
                terms["spec_mag"] = w.spec_mag * mag
            if w.spec_complex > 0:
                terms["spec_complex"] = w.spec_complex * cplx
        if self.si_sdr is not None:
            terms["si_sdr"] = w.si_sdr * self.si_sdr(enhanced, target)
        if self.lsnr is not None:
            terms["lsnr"] = w.lsnr * self.lsnr(out.lsnr_db, clean, noise)
        if disc is not None and (w.adv > 0 or w.feature_match > 0):
            with torch.no_grad():
                _, real_feats = disc(target)
            fake_outs, fake_feats = disc(enhanced)
            if w.adv > 0:
                terms["adv"] = w.adv * generator_adv_loss(fake_outs)
            if w.feature_match > 0:
                terms["feature_match"] = w.feature_match * feature_matching_loss(real_feats, fake_feats)
        if self.dnsmos is not None:
            mos = self.dnsmos(enhanced) @ self.dnsmos_mix.to(enhanced.dtype) / self.dnsmos_mix.sum()
            terms["dnsmos"] = w.dnsmos * (self.cfg.dnsmos.target - mos).mean()
        if self.speaker is not None:
            terms["speaker"] = w.speaker * self.speaker(enhanced, target)
        return terms

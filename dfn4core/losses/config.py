"""Loss configuration: the named weight of every generator loss term and each term's settings.

`LossConfig.from_dict(LossConfig().to_dict())` round-trips; an unknown key anywhere is a ConfigError
naming it (for instance `weights.spec_mgn`), so a typo in a training TOML never passes silently.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

from dfn4core.config import dataclass_from_dict
from dfn4core.errors import ConfigError


@dataclass(frozen=True)
class LossWeights:
    """Weight of each generator loss term; a term with weight 0 is neither built nor computed.

    The spectral and local-SNR weights are DeepFilterNet3's (`MultiResSpecLoss` factor and
    factor_complex 500, `LocalSnrLoss` 1e-3). The adversarial ones follow HiFi-GAN, which sums
    adversarial losses over discriminators (weight 1) and feature-matching L1 over feature maps
    (weight 2) next to 45 * mel-L1, about 10 late in training. Here both are means (5 period
    discriminators, 30 feature maps), and the weighted spectral loss of a typical GAN-phase output
    (-30 dBFS speech with 20 dB residual noise) is about 3, 0.3 times HiFi-GAN's mel term; so
    adv = 1 * 5 * 0.3 = 1.5 and feature_match = 2 * 30 * 0.3 = 18.

    Args:
        spec_mag: multi-resolution MSE of compressed magnitudes |X|^gamma.
        spec_complex: multi-resolution MSE of compressed complex spectra X |X|^(gamma - 1).
        lsnr: MSE in dB^2 of the local-SNR head against `local_snr_target`.
        adv: least-squares adversarial loss (mean over the period discriminators).
        feature_match: L1 feature matching (mean over every discriminator feature map).
        dnsmos: target MOS minus the differentiable DNSMOS P.835 score (optional, heavy).
        speaker: speaker-embedding contrastive loss (optional, needs the resemblyzer weights).
        si_sdr: minus the scale-invariant SDR in dB of the output wave against the clean one
            (`SiSdrLoss`; per item, capped at `LossConfig.si_sdr_max_db`): 1 dB is worth the
            weight. Fine-tuning the shipped full, the two weighted spectral terms add up to about 7;
            recipes/default/train_full_sisdr.toml uses 0.5.
    """

    spec_mag: float = 500.0
    spec_complex: float = 500.0
    lsnr: float = 1e-3
    adv: float = 1.5
    feature_match: float = 18.0
    dnsmos: float = 0.0
    speaker: float = 0.0
    si_sdr: float = 0.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"loss weight weights.{f.name} must be a number >= 0, got {value!r}")
            object.__setattr__(self, f.name, float(value))


@dataclass(frozen=True)
class DnsmosConfig:
    """Settings of the DNSMOS P.835 term: weight * (target - mix . (SIG, BAK, OVRL)).

    Args:
        target: the MOS the term pulls towards; only shifts the value, not the gradient.
        mix: weights of (SIG, BAK, OVRL) in the scored MOS, normalised to sum 1; (0, 0, 1) is OVRL.
        personalized: use the personalized DNSMOS model (interfering talkers count as noise).
        max_windows: score at most this many 9.01 s windows per clip (None: all, as speechmos does;
            a 3 s clip tiled to 9.01 s has 3 nearly identical windows, so 1 is a third of the cost).
    """

    target: float = 5.0
    mix: tuple[float, float, float] = (0.0, 0.0, 1.0)
    personalized: bool = False
    max_windows: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mix", tuple(float(m) for m in self.mix))
        if len(self.mix) != 3 or min(self.mix) < 0 or sum(self.mix) <= 0:
            raise ConfigError(f"dnsmos.mix must be 3 weights >= 0 (SIG, BAK, OVRL) with a positive sum, got {self.mix}")
        if self.max_windows is not None and self.max_windows < 1:
            raise ConfigError(f"dnsmos.max_windows must be >= 1 or None, got {self.max_windows}")


@dataclass(frozen=True)
class SpeakerConfig:
    """Settings of the speaker contrastive term.

    Args:
        temperature: softmax temperature of the InfoNCE logits (cosine similarities).
        partial_frames: mel frames (10 ms each) per partial utterance embedded by the encoder.
        partial_step_frames: hop between partial utterances; their embeddings are averaged.
        weights_path: the encoder weights file; empty: `pretrained.pt` of the installed resemblyzer.
    """

    temperature: float = 0.1
    partial_frames: int = 160
    partial_step_frames: int = 80
    weights_path: str = ""

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ConfigError(f"speaker.temperature must be positive, got {self.temperature}")
        if self.partial_frames < 1 or self.partial_step_frames < 1:
            raise ConfigError("speaker.partial_frames and speaker.partial_step_frames must be >= 1")


@dataclass(frozen=True)
class LossConfig:
    """Everything the generator and discriminator losses need besides the model config (signal chain, local-SNR range).

    Args:
        weights: the named weight of each term.
        fft_sizes: FFT sizes of the multi-resolution spectral loss (Hann window, hop fft/4).
        gamma: magnitude compression exponent of the spectral loss.
        mpd_periods: periods of the MultiPeriodDiscriminator.
        mpd_channels: channels of each period discriminator's conv stack (HiFi-GAN: 32..1024).
        dnsmos: settings of the DNSMOS term.
        speaker: settings of the speaker term.
        si_sdr_max_db: the SI-SDR term's cap per item: items already this close to the clean
            signal add no gradient (and a near-perfect item no runaway one).
    """

    weights: LossWeights = field(default_factory=LossWeights)
    fft_sizes: tuple[int, ...] = (256, 512, 1024, 2048)
    gamma: float = 0.3
    mpd_periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    mpd_channels: tuple[int, ...] = (16, 32, 64, 128)
    dnsmos: DnsmosConfig = field(default_factory=DnsmosConfig)
    speaker: SpeakerConfig = field(default_factory=SpeakerConfig)
    si_sdr_max_db: float = 50.0

    def __post_init__(self) -> None:
        for name in ("fft_sizes", "mpd_periods", "mpd_channels"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if not self.fft_sizes or any(n < 16 or n % 4 for n in self.fft_sizes):
            raise ConfigError(f"fft_sizes must be multiples of 4 and >= 16, got {self.fft_sizes}")
        if not 0 < self.gamma <= 1:
            raise ConfigError(f"gamma must be in (0, 1], got {self.gamma}")
        if not self.mpd_periods or min(self.mpd_periods) < 1:
            raise ConfigError(f"mpd_periods must be positive, got {self.mpd_periods}")
        if not self.mpd_channels or min(self.mpd_channels) < 1:
            raise ConfigError(f"mpd_channels must be positive, got {self.mpd_channels}")
        if not self.si_sdr_max_db > 0:
            raise ConfigError(f"si_sdr_max_db must be positive, got {self.si_sdr_max_db}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LossConfig:
        """Rebuild from `to_dict()` or a TOML table; unknown keys are a ConfigError naming them."""
        tables = {"weights": LossWeights, "dnsmos": DnsmosConfig, "speaker": SpeakerConfig}
        convert = {name: functools.partial(dataclass_from_dict, sub) for name, sub in tables.items()}
        return dataclass_from_dict(cls, data, "loss.", convert=convert)

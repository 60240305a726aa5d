"""What the perceptual losses share: finding a pretrained file inside an installed package, and
bringing 48 kHz audio to the 16 kHz those pretrained models take, differentiably.

The losses themselves are `dnsmos_torch.DNSMOSProxy` and `speaker.SpeakerContrastiveLoss`.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dfn4core.errors import ConfigError

PRETRAINED_SR = 16_000


def package_file(package: str, relative: str, install_hint: str) -> Path:
    """The path of a data file shipped inside an installed package, without importing the package.

    Args:
        package: the top-level package name, for instance "speechmos".
        relative: the file's path inside the package folder.
        install_hint: the command that installs the package, for the error message.
    Raises:
        ConfigError: the package or the file is not installed.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / relative
        if path.is_file():
            return path
    raise ConfigError(f"{package}/{relative} not found: install it with `{install_hint}`")


def lowpass_filter(factor: int, zeros: int = 48, beta: float = 8.6, rolloff: float = 0.945) -> Tensor:
    """Kaiser-windowed sinc low-pass for decimating by `factor`, unit gain at DC.

    The cutoff sits at rolloff / factor of the input Nyquist frequency; with 48 zero crossings a
    side and beta 8.6 (48 -> 16 kHz): flat within 0.001 dB to 7 kHz, -0.05 dB at 7.2 kHz, -72 dB at
    the new Nyquist frequency 8 kHz and below -90 dB from 8.5 kHz on.

    Shapes: -> (2 * factor * zeros + 1,) float64.
    """
    half = factor * zeros
    n = torch.arange(-half, half + 1, dtype=torch.float64)
    cutoff = rolloff / factor  # fraction of the input Nyquist frequency
    window = torch.kaiser_window(2 * half + 1, periodic=False, beta=beta, dtype=torch.float64)
    taps = cutoff * torch.sinc(cutoff * n) * window
    return taps / taps.sum()


class Downsample(nn.Module):
    """Integer-factor decimation: windowed-sinc low-pass, then every factor-th sample (zero phase).

    Output sample m is input sample factor * m filtered, so the two signals stay time-aligned.

    Args:
        factor: decimation factor (3 for 48 kHz -> 16 kHz).

    Shapes: (B, N) -> (B, ceil(N / factor)).
    """

    def __init__(self, factor: int = 3):
        super().__init__()
        if factor < 1:
            raise ValueError(f"factor must be >= 1, got {factor}")
        self.factor = factor
        self.register_buffer("taps", lowpass_filter(factor).float()[None, None], persistent=False)

    def forward(self, wave: Tensor) -> Tensor:
        if self.factor == 1:
            return wave
        half = self.taps.shape[-1] // 2
        out = F.conv1d(F.pad(wave[:, None], (half, half)), self.taps.to(wave.dtype), stride=self.factor)
        return out[:, 0]


def to_pretrained_sr(input_sr: int) -> nn.Module:
    """The module bringing `input_sr` audio to 16 kHz. Raises ConfigError for other rates."""
    factor = input_sr / PRETRAINED_SR
    if factor < 1 or not math.isclose(factor, round(factor)):
        raise ConfigError(f"the perceptual losses take a multiple of {PRETRAINED_SR} Hz, got {input_sr}")
    return Downsample(round(factor))

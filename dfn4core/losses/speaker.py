"""Speaker-identity loss: GE2E speaker embeddings (resemblyzer's pretrained encoder) of enhanced
vs clean speech, contrasted InfoNCE-style with the other utterances of the batch.

The encoder is resemblyzer's `VoiceEncoder` (3-layer LSTM 40 -> 256, linear 256 -> 256, ReLU, L2
norm) loaded from the package's `pretrained.pt` with `torch.load(weights_only=True)`; its mel
front end (16 kHz, 25 ms Hann window, 10 ms hop, 40 Slaney mels, power) is rebuilt here in torch,
so neither resemblyzer's code nor its audio stack (librosa, webrtcvad) is imported.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from dfn4core.errors import ConfigError
from dfn4core.losses.pretrained_input import PRETRAINED_SR, package_file, to_pretrained_sr

log = logging.getLogger(__name__)

RESEMBLYZER_HINT = "pip install --no-deps resemblyzer"
MEL_WINDOW_SIZE = 400  # 25 ms at 16 kHz
MEL_HOP_SIZE = 160  # 10 ms at 16 kHz
N_MELS = 40
HIDDEN_SIZE = 256
EMBEDDING_SIZE = 256
NUM_LAYERS = 3
NORM_TARGET_DBFS = -30.0  # resemblyzer normalises quieter input up to this level
_EPS = 1e-8


def hz_to_mel(hz: Tensor) -> Tensor:
    """Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above."""
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    log_part = min_log_hz / f_sp + torch.log(hz.clamp_min(min_log_hz) / min_log_hz) / logstep
    return torch.where(hz >= min_log_hz, log_part, hz / f_sp)


def mel_to_hz(mel: Tensor) -> Tensor:
    """Inverse of `hz_to_mel`."""
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return torch.where(mel >= min_log_mel, min_log_hz * torch.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> Tensor:
    """Triangular Slaney mel filters with Slaney (area) normalisation, as librosa.filters.mel.

    Shapes: -> (n_mels, n_fft // 2 + 1) float64.
    """
    fmax = sr / 2 if fmax is None else fmax
    fft_hz = torch.linspace(0, sr / 2, n_fft // 2 + 1, dtype=torch.float64)
    mel_lo, mel_hi = hz_to_mel(torch.tensor([fmin, fmax], dtype=torch.float64))
    edges_hz = mel_to_hz(torch.linspace(float(mel_lo), float(mel_hi), n_mels + 2, dtype=torch.float64))
    widths = edges_hz.diff()
    ramps = edges_hz[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = torch.minimum(rising, falling).clamp_min(0)
    return weights * (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]


def resemblyzer_weights(path: str | Path | None = None) -> Path:
    """The encoder weights file: `path`, or `pretrained.pt` of the installed resemblyzer package.

    Raises:
        ConfigError: the file is missing, with the pip command that installs it.
    """
    if path:
        if not Path(path).is_file():
            raise ConfigError(f"speaker encoder weights not found at {path}")
        return Path(path)
    return package_file("resemblyzer", "pretrained.pt", RESEMBLYZER_HINT)


class SpeakerEncoder(nn.Module):
    """resemblyzer's GE2E VoiceEncoder with its mel front end, frozen, differentiable w.r.t. audio.

    Args:
        weights_path: the weights file (a dict with "model_state"); None: resemblyzer's pretrained.pt.
        partial_frames: mel frames per partial utterance (resemblyzer: 160, 1.6 s).
        partial_step_frames: hop between partials (the last one ends with the clip); the partial
            embeddings are averaged, then L2-normed.

    Shapes: wave (B, N) at 16 kHz -> (B, 256), unit norm.
    """

    def __init__(
        self, weights_path: str | Path | None = None, partial_frames: int = 160, partial_step_frames: int = 80
    ):
        super().__init__()
        self.partial_frames, self.partial_step_frames = partial_frames, partial_step_frames
        self.lstm = nn.LSTM(N_MELS, HIDDEN_SIZE, NUM_LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN_SIZE, EMBEDDING_SIZE)
        path = resemblyzer_weights(weights_path)
        state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
        # The file also holds GE2E's similarity scale and bias, which only training used.
        self.load_state_dict({k: v for k, v in state.items() if k.split(".")[0] in ("lstm", "linear")})
        self.requires_grad_(False)
        self.register_buffer("window", torch.hann_window(MEL_WINDOW_SIZE), persistent=False)
        mel = mel_filterbank(PRETRAINED_SR, MEL_WINDOW_SIZE, N_MELS).float()
        self.register_buffer("mel_fb", mel, persistent=False)
        log.debug("SpeakerEncoder: weights from %s", path)

    def mel(self, wave: Tensor) -> Tensor:
        """Power mel spectrogram, centred frames with reflect padding. (B, N) -> (B, 1 + N // 160, 40)."""
        half = MEL_WINDOW_SIZE // 2
        mode = "reflect" if wave.shape[1] > half else "constant"
        frames = F.pad(wave[:, None], (half, half), mode=mode)[:, 0].unfold(1, MEL_WINDOW_SIZE, MEL_HOP_SIZE)
        power = torch.fft.rfft(frames * self.window, dim=-1).abs().square()
        return power @ self.mel_fb.T

    def embed_mels(self, mels: Tensor) -> Tensor:
        """Embedding of each mel segment, resemblyzer's VoiceEncoder.forward. (B, T, 40) -> (B, 256)."""
        # cuDNN's RNN backward refuses eval mode; the gradient w.r.t. the input is needed here.
        with torch.backends.cudnn.flags(enabled=False):
            _, (hidden, _) = self.lstm(mels)
        embeds = F.relu(self.linear(hidden[-1]))
        return embeds / embeds.norm(dim=1, keepdim=True).clamp_min(_EPS)

    def forward(self, wave: Tensor) -> Tensor:
        if wave.dim() != 2 or wave.shape[1] == 0:
            raise ValueError(f"wave must be (batch, samples), got {tuple(wave.shape)}")
        rms = wave.square().mean(1, keepdim=True).add(_EPS**2).sqrt()
        wave = wave * (10 ** (NORM_TARGET_DBFS / 20) / rms).clamp_min(1.0)  # raise quiet input only
        mels = self.mel(wave)
        batch, frames = mels.shape[:2]
        size = min(self.partial_frames, frames)
        starts = list(range(0, frames - size + 1, self.partial_step_frames))
        if starts[-1] + size < frames:  # one more partial, flush with the end, so every frame counts
            starts.append(frames - size)
        mels = torch.stack([mels[:, s : s + size] for s in starts], dim=1)  # B, W, P, 40
        partials = rearrange(self.embed_mels(rearrange(mels, "b w p m -> (b w) p m")), "(b w) e -> b w e", b=batch)
        return F.normalize(partials.mean(1), dim=1)


class SpeakerContrastiveLoss(nn.Module):
    """InfoNCE over the batch: each enhanced clip's embedding must be closest to its own clean one.

    logits[i, j] = cos(e_enhanced_i, e_clean_j) / temperature, loss = cross-entropy with targets i.
    A batch of one has no negatives; its loss is then 1 - cos(e_enhanced, e_clean). Clean
    embeddings are targets (no gradient). Utterances of one speaker in a batch count as negatives:
    the loss assumes one speaker per clip and different speakers across the batch.

    Args:
        input_sr: sample rate of the waveforms, a multiple of 16 kHz.
        temperature: softmax temperature.
        weights_path: the encoder weights file; None: resemblyzer's pretrained.pt.
        partial_frames: see `SpeakerEncoder`.
        partial_step_frames: see `SpeakerEncoder`.
    Raises:
        ConfigError: no weights file (resemblyzer not installed).

    Shapes: enhanced, clean (B, N) -> scalar.
    """

    def __init__(
        self,
        input_sr: int = 48_000,
        temperature: float = 0.1,
        weights_path: str | Path | None = None,
        partial_frames: int = 160,
        partial_step_frames: int = 80,
    ):
        super().__init__()
        self.temperature = temperature
        self.resample = to_pretrained_sr(input_sr)
        self.encoder = SpeakerEncoder(weights_path, partial_frames, partial_step_frames)

    def forward(self, enhanced: Tensor, clean: Tensor) -> Tensor:
        if enhanced.shape != clean.shape:
            shapes = f"{tuple(enhanced.shape)}, {tuple(clean.shape)}"
            raise ValueError(f"enhanced and clean must have the same shape, got {shapes}")
        est = self.encoder(self.resample(enhanced))
        with torch.no_grad():
            ref = self.encoder(self.resample(clean))
        if est.shape[0] == 1:
            return 1 - (est * ref).sum()
        logits = est @ ref.T / self.temperature
        return F.cross_entropy(logits, torch.arange(est.shape[0], device=est.device))

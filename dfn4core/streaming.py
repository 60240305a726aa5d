"""Offline `enhance` and the streaming `Enhancer`, the only stateful wrapper around a DFN4.

`Enhancer.process` takes chunks of any size and returns as many samples as it was given, lagging
the input by `latency` samples (window + lookahead = 40 ms at 48 kHz). `enhance` runs the same
Enhancer over the whole signal in blocks and removes that lag, so both give the same samples.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import Tensor

from dfn4core.dsp.hop_buffer import HopBuffer
from dfn4core.errors import AudioError, ConfigError
from dfn4core.io import block_frames
from dfn4core.model.dfnet4 import DFN4
from dfn4core.model.fuse import fuse_for_inference

BLOCK_S = 10.0  # seconds per model call in offline enhancement: bounds memory for long inputs
MAX_CHANNELS = 1024  # more is a (samples, channels) array passed untransposed, or a mistake


class Enhancer:
    """Streaming enhancement of `channels` streams at the model's sample rate.

    Args:
        model: a DFN4 or DFN3 (put in eval mode by the caller or by `load_model`); a DFN4 runs as its
            fused copy (`dfn4core.model.fuse.fuse_for_inference`: the same output, less work).
        atten_lim_db: limit of the noise attenuation in dB (None: no limit).
        channels: number of streams processed together (channels of one file, as a batch).
    """

    def __init__(self, model: DFN4, atten_lim_db: float | None = None, channels: int = 1):
        if not 1 <= channels <= MAX_CHANNELS:
            raise ConfigError(f"channels must be 1..{MAX_CHANNELS}, got {channels}")
        self.model = fuse_for_inference(model)
        self.channels = channels
        # DFN3 (onnxruntime inside) has buffers but no parameters.
        ref = next(itertools.chain(model.parameters(), model.buffers()))
        self.device, self.dtype = ref.device, ref.dtype
        dsp = model.cfg.dsp
        self.buffer = HopBuffer(dsp.hop_size, dsp.delay_size, atten_lim_db, zeros=self._zeros,
                                cat=lambda parts: torch.cat(parts, dim=1))  # fmt: skip
        self.hop, self.delay, self.latency = self.buffer.hop, self.buffer.delay, self.buffer.latency
        self.reset()

    def _zeros(self, n: int) -> Tensor:
        return torch.zeros(self.channels, n, device=self.device, dtype=self.dtype)

    def reset(self) -> None:
        """Forget everything: the next sample starts a new stream."""
        self._numpy = False
        self.state = self.model.init_state(self.channels, self.device, self.dtype)
        self.buffer.reset()

    @torch.no_grad()
    def process(self, chunk: Tensor | np.ndarray) -> Tensor | np.ndarray:
        """Enhance a chunk (C, N) (or (N,) for one channel); returns (C, N), `latency` samples behind.

        The result has the chunk's type: a numpy array for a numpy chunk, else a tensor on its device.
        """
        self._numpy = isinstance(chunk, np.ndarray)
        x = torch.as_tensor(chunk)
        out_device = x.device
        x = x.to(self.device, self.dtype)
        if x.dim() == 1:
            x = x[None]
        if x.dim() != 2 or x.shape[0] != self.channels:
            hint = " (soundfile's (samples, channels) layout: pass its .T)" if x.dim() == 2 and x.shape[1] == self.channels else ""
            raise AudioError(None, f"expected ({self.channels}, N) samples, got {tuple(x.shape)}{hint}")
        result = self.buffer.push(x, self._enhance_hops)
        return result.cpu().numpy() if self._numpy else result.to(out_device)

    def _enhance_hops(self, noisy: Tensor) -> Tensor:
        """(C, k * hop) -> (C, k * hop): one `step` for a single hop, else one `process` call."""
        if noisy.shape[1] == self.hop:
            wet, self.state = self.model.step(noisy, self.state)
            return wet
        out, self.state = self.model.process(noisy, self.state)
        return out.wave

    def flush(self) -> Tensor | np.ndarray:
        """The last `latency` enhanced samples (C, latency), of the type `process` was last given; then the
        Enhancer starts afresh."""
        numpy = self._numpy
        out = self.process(torch.zeros(self.channels, self.latency, dtype=self.dtype))
        self.reset()
        return out.cpu().numpy() if numpy else out


def enhance(
    model: DFN4, audio: Tensor | np.ndarray, sr: int, atten_lim_db: float | None = None
) -> Tensor | np.ndarray:
    """Enhance a whole signal offline; the output lines up with the input sample for sample.

    Args:
        model: a DFN4 in eval mode.
        audio: (N,) or (C, N) samples; each channel is enhanced.
        sr: sample rate of `audio`; other rates than the model's are resampled there and back.
        atten_lim_db: limit of the noise attenuation in dB (None: no limit).
    Returns:
        Enhanced audio of the same type, shape and rate as `audio`.
    Raises:
        AudioError: empty audio, NaN or infinite samples, a non-positive sample rate, or more
            channels than samples or than MAX_CHANNELS (a (samples, channels) array).
    """
    is_numpy = isinstance(audio, np.ndarray)
    x = torch.as_tensor(audio, dtype=torch.float32)
    mono = x.dim() == 1
    x = x[None] if mono else x
    _check(x, sr)
    model_sr = model.cfg.dsp.sr
    if sr != model_sr:
        from dfn4core.io import resample

        x = torch.from_numpy(resample(x.cpu().numpy(), sr, model_sr))
    enhancer = Enhancer(model, atten_lim_db, channels=x.shape[0])
    block = block_frames(BLOCK_S, model_sr, x.shape[0])
    parts = [enhancer.process(x[:, i : i + block]) for i in range(0, x.shape[1], block)]
    parts.append(enhancer.flush())
    y = torch.cat(parts, dim=1)[:, enhancer.latency :]
    if sr != model_sr:
        from dfn4core.io import resample

        y = torch.from_numpy(_fit(resample(y.numpy(), model_sr, sr), audio.shape[-1]))
    y = y[0] if mono else y
    return y.numpy() if is_numpy else y.to(torch.as_tensor(audio).device)


def _check(x: Tensor, sr: int) -> None:
    if x.dim() != 2:
        raise AudioError(None, f"audio must be (samples,) or (channels, samples), got shape {tuple(x.shape)}")
    if x.shape[1] == 0 or x.shape[0] == 0:
        raise AudioError(None, "audio is empty")
    if x.shape[0] > MAX_CHANNELS or x.shape[0] > x.shape[1]:
        raise AudioError(
            None, f"audio of shape {tuple(x.shape)} has more channels than samples or than {MAX_CHANNELS}: "
            "expected (channels, samples); for soundfile's (samples, channels) array pass its .T"
        )
    if not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise AudioError(None, f"sample rate must be a positive integer, got {sr!r}")
    if not torch.isfinite(x).all():
        raise AudioError(None, "audio contains NaN or infinite samples")


def _fit(x: np.ndarray, length: int) -> np.ndarray:
    """Trim or zero-pad the last axis to `length` (resampling can be off by a sample)."""
    if x.shape[-1] >= length:
        return x[..., :length]
    return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, length - x.shape[-1])])

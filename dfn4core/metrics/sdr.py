"""Signal-to-distortion metrics: scale-invariant SDR and segmental SNR (with its framing).

SI-SDR is defined once here, for numpy (`si_sdr`, one pair, checked) and for batched torch tensors
(`si_sdr_batch`, validation during training): both take (reference, estimate), remove the means and
add the same ENERGY_EPS to both energies.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dfn4core.errors import MetricError
from dfn4core.metrics.inputs import check_pair

ENERGY_EPS = 1e-20  # keeps SI-SDR finite (about +200 dB) for identical signals
FRAME_MS = 30.0  # Hu & Loizou analysis frame
SEG_SNR_MIN_DB = -10.0
SEG_SNR_MAX_DB = 35.0
MATLAB_EPS = float(np.finfo(np.float64).eps)  # the `eps` of the MATLAB reference code


def si_sdr(
    reference: Any,
    estimate: Any,
    sr: int,
    *,
    estimate_sr: int | None = None,
    align: bool = False,
    zero_mean: bool = True,
) -> float:
    """Scale-invariant signal-to-distortion ratio in dB.

    Le Roux, Wisdom, Erdogan, Hershey, "SDR - half-baked or well done?", ICASSP 2019:
    the estimate is projected on the reference, s_t = (<s', s> / ||s||^2) s, and
    SI-SDR = 10 log10(||s_t||^2 / ||s' - s_t||^2). Both signals are made zero-mean first, as
    the paper assumes.

    Args:
        reference: clean signal s.
        estimate: signal s' to score.
        sr: sample rate of `reference` in Hz (SI-SDR itself does not depend on it).
        estimate_sr: sample rate of `estimate`; None = `sr`.
        align: resample and trim instead of raising on a rate or length mismatch.
        zero_mean: remove each signal's mean first.

    Returns:
        SI-SDR in dB; higher is better, about +200 dB for identical signals.

    Shapes:
        reference, estimate: (N,) or (1, N).

    Raises:
        MetricError: mismatched rates or lengths (without `align`), silent reference.
    """
    ref, est = check_pair(reference, estimate, sr, estimate_sr=estimate_sr, align=align)
    if zero_mean:
        ref, est = ref - ref.mean(), est - est.mean()
    ref_energy = float(np.dot(ref, ref))
    if ref_energy == 0.0:
        raise MetricError("reference has no energy after removing its mean")
    return float(si_sdr_batch(ref[None], est[None], zero_mean=False)[0])


def si_sdr_batch(reference: Any, estimate: Any, *, zero_mean: bool = True) -> Any:
    """SI-SDR in dB of each row, on torch tensors or numpy arrays alike (no checks: see `si_sdr`).

    A reference without energy gives a finite, very low score rather than an error.

    Shapes:
        reference, estimate: (B, N) -> (B,).
    """
    if zero_mean:
        reference = reference - reference.mean(-1)[..., None]
        estimate = estimate - estimate.mean(-1)[..., None]
    scale = (estimate * reference).sum(-1) / ((reference * reference).sum(-1) + ENERGY_EPS)
    target = scale[..., None] * reference
    noise = estimate - target
    ratio = ((target * target).sum(-1) + ENERGY_EPS) / ((noise * noise).sum(-1) + ENERGY_EPS)
    return 10.0 * (ratio.log10() if hasattr(ratio, "log10") else np.log10(ratio))  # torch keeps its graph


def frame_layout(n: int, sr: int) -> tuple[int, int, int]:
    """(win_size, hop_size, frames) of the Hu & Loizou analysis: 30 ms frames, 75 % overlap.

    The frame count is floor(n / hop - win / hop), as in the MATLAB reference.

    Raises:
        MetricError: the signal is shorter than one frame and a hop.
    """
    win = round(FRAME_MS * sr / 1000)
    hop = win // 4
    frames = (n - win) // hop
    if frames < 1:
        raise MetricError(f"signal too short for {FRAME_MS:g} ms frames: {n} samples at {sr} Hz")
    return win, hop, frames


def hu_loizou_frames(x: np.ndarray, sr: int) -> np.ndarray:
    """Hann-windowed analysis frames of the Hu & Loizou code: window 0.5(1 - cos(2 pi k / (W + 1))), k = 1..W.

    Shapes:
        x: (N,) -> (T, W).
    """
    win, hop, frames = frame_layout(x.size, sr)
    window = 0.5 * (1.0 - np.cos(2.0 * np.pi * np.arange(1, win + 1) / (win + 1)))
    index = hop * np.arange(frames)[:, None] + np.arange(win)[None, :]
    return x[index] * window


def segmental_snr_frames(reference: np.ndarray, estimate: np.ndarray, sr: int) -> np.ndarray:
    """Per-frame SNR in dB clamped to [-10, 35] (Hu & Loizou's `snr`); (N,), (N,) -> (T,)."""
    ref_frames, est_frames = hu_loizou_frames(reference, sr), hu_loizou_frames(estimate, sr)
    signal = np.sum(ref_frames**2, axis=1)
    noise = np.sum((ref_frames - est_frames) ** 2, axis=1)
    snr_db = 10.0 * np.log10(signal / (noise + MATLAB_EPS) + MATLAB_EPS)
    return np.clip(snr_db, SEG_SNR_MIN_DB, SEG_SNR_MAX_DB)


def segmental_snr(
    reference: Any, estimate: Any, sr: int, *, estimate_sr: int | None = None, align: bool = False
) -> float:
    """Segmental SNR (SSNR) in dB, as in the VoiceBank-DEMAND tables.

    Hu & Loizou, "Evaluation of objective quality measures for speech enhancement", IEEE TASLP
    16(1), 2008, and their `composite.m`: 30 ms Hann frames with 75 % overlap, per-frame
    10 log10(sum s^2 / sum (s - s')^2) clamped to [-10, 35] dB, averaged over all frames.

    Args:
        reference: clean signal.
        estimate: signal to score.
        sr: sample rate of `reference` in Hz (sets the frame length).
        estimate_sr: sample rate of `estimate`; None = `sr`.
        align: resample and trim instead of raising on a rate or length mismatch.

    Returns:
        Mean segmental SNR in dB, within [-10, 35].

    Shapes:
        reference, estimate: (N,) or (1, N).

    Raises:
        MetricError: mismatched rates or lengths (without `align`), silent reference, too short.
    """
    ref, est = check_pair(reference, estimate, sr, estimate_sr=estimate_sr, align=align)
    return float(np.mean(segmental_snr_frames(ref, est, sr)))

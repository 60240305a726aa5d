"""What every metric checks first: mono float64 arrays, and reference/estimate pairs.

A pair must share its sample rate and length; `align=True` resamples the estimate to the
reference's rate (soxr, through dfn4core.io) and trims both to the shorter one instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dfn4core.errors import MetricError

INTRUSIVE_SR = 16_000  # intrusive metrics run at 16 kHz, as the VoiceBank-DEMAND literature does
SILENCE_PEAK = 1e-5  # a reference whose peak is below -100 dBFS has nothing to compare against


def as_mono(x: Any, name: str = "signal") -> np.ndarray:
    """Turns a numpy array or torch tensor of shape (N,) or (1, N) into a float64 (N,) array.

    Raises:
        MetricError: more than one channel, empty, or NaN/infinite samples.
    """
    if hasattr(x, "detach"):  # a torch tensor; torch itself is not needed here
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 1:
        raise MetricError(f"{name} must be mono, shape (N,) or (1, N); got shape {arr.shape}")
    if arr.size == 0:
        raise MetricError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise MetricError(f"{name} contains NaN or infinite samples")
    return arr


def to_rate(x: np.ndarray, sr: int, sr_out: int) -> np.ndarray:
    """Resamples a mono signal with soxr (dfn4core.io.resample); float64 (M,)."""
    if sr == sr_out:
        return x
    from dfn4core.io import resample

    return resample(x.astype(np.float32), sr, sr_out).astype(np.float64)


def check_pair(
    reference: Any, estimate: Any, sr: int, *, estimate_sr: int | None = None, align: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Checks a reference/estimate pair and returns both as float64 mono arrays at `sr`.

    Args:
        reference: clean signal, (N,) or (1, N).
        estimate: signal to score, (M,) or (1, M).
        sr: sample rate of `reference` in Hz.
        estimate_sr: sample rate of `estimate`; None = `sr`.
        align: resample the estimate to `sr` and trim both to the shorter length instead of
            raising on a mismatch.

    Returns:
        (reference, estimate), both (L,) at `sr`.

    Raises:
        MetricError: rates or lengths differ (and not `align`), a signal is not mono, empty or
            not finite, or the reference is silent.
    """
    if not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise MetricError(f"sample rate must be a positive integer in Hz, got {sr!r}")
    ref, est = as_mono(reference, "reference"), as_mono(estimate, "estimate")
    estimate_sr = sr if estimate_sr is None else estimate_sr
    if estimate_sr != sr:
        if not align:
            raise MetricError(
                f"sample rates differ: reference {sr} Hz, estimate {estimate_sr} Hz (align=True resamples)"
            )
        est = to_rate(est, estimate_sr, sr)
    if ref.size != est.size:
        if not align:
            raise MetricError(f"lengths differ: reference {ref.size} samples, estimate {est.size} (align=True trims)")
        n = min(ref.size, est.size)
        ref, est = ref[:n], est[:n]
    if np.max(np.abs(ref)) < SILENCE_PEAK:
        raise MetricError("reference is silent (peak below -100 dBFS)")
    return ref, est

"""Composite measures CSIG, CBAK, COVL (Hu & Loizou 2008) and their parts: LLR, WSS and segmental SNR.

Written from the paper and its MATLAB reference (`composite.m`: 30 ms Hann frames, 75 %
overlap, the worst 5 % of LLR and WSS frames dropped), vectorized over frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dfn4core.metrics.inputs import INTRUSIVE_SR, check_pair, to_rate
from dfn4core.metrics.pesq_stoi import pesq
from dfn4core.metrics.sdr import MATLAB_EPS, frame_layout, hu_loizou_frames, segmental_snr_frames

KEPT_SHARE = 0.95  # `alpha` of composite.m: mean over the best 95 % of LLR and WSS frames
LPC_ORDER = 16  # LLR analysis order at 16 kHz (10 below 10 kHz)
LPC_ORDER_NARROW = 10
WSS_KMAX = 20.0  # Klatt (1982), p. 1280: global-peak weight
WSS_KLOCMAX = 1.0  # Klatt (1982), p. 1280: local-peak weight
WSS_FLOOR_DB = -30.0  # filter weights below this are set to zero
WSS_MIN_ENERGY = 1e-10
# Klatt's 25 critical bands: centre frequencies and bandwidths in Hz (composite.m, `wss`).
CENTRE_HZ = np.array([
    50.0, 120.0, 190.0, 260.0, 330.0, 400.0, 470.0, 540.0, 617.372, 703.378, 798.717, 904.128, 1020.38,
    1148.30, 1288.72, 1442.54, 1610.70, 1794.16, 1993.93, 2211.08, 2446.71, 2701.97, 2978.04, 3276.17, 3597.63,
])  # fmt: skip
BANDWIDTH_HZ = np.array([
    70.0, 70.0, 70.0, 70.0, 70.0, 70.0, 70.0, 77.3724, 86.0056, 95.3398, 105.411, 116.256, 127.914,
    140.423, 153.823, 168.154, 183.457, 199.776, 217.153, 235.631, 255.255, 276.072, 298.126, 321.465, 346.136,
])  # fmt: skip
# Hu & Loizou's regression weights (2008, and composite.m): (constant, llr, pesq, wss, segsnr).
CSIG_WEIGHTS = (3.093, -1.029, 0.603, -0.009, 0.0)
CBAK_WEIGHTS = (1.634, 0.0, 0.478, -0.007, 0.063)
COVL_WEIGHTS = (1.594, -0.512, 0.805, -0.007, 0.0)


@dataclass(frozen=True)
class Composite:
    """Composite ratings (1-5) and the measures they combine.

    Args:
        csig: predicted signal distortion rating.
        cbak: predicted background intrusiveness rating.
        covl: predicted overall quality rating.
        pesq: the PESQ score used.
        llr: log-likelihood ratio, mean of the best 95 % of frames.
        wss: weighted spectral slope, mean of the best 95 % of frames.
        ssnr: segmental SNR in dB, mean of all frames.
    """

    csig: float
    cbak: float
    covl: float
    pesq: float
    llr: float
    wss: float
    ssnr: float


def composite(
    reference: Any,
    estimate: Any,
    sr: int,
    *,
    pesq_score: float | None = None,
    estimate_sr: int | None = None,
    align: bool = False,
) -> Composite:
    """CSIG, CBAK and COVL of Hu & Loizou, at 16 kHz.

    Y. Hu and P. C. Loizou, "Evaluation of objective quality measures for speech enhancement",
    IEEE TASLP 16(1):229-238, 2008 (regression weights as in their composite.m):
    Csig = 3.093 - 1.029 LLR + 0.603 PESQ - 0.009 WSS;
    Cbak = 1.634 + 0.478 PESQ - 0.007 WSS + 0.063 segSNR;
    Covl = 1.594 + 0.805 PESQ - 0.512 LLR - 0.007 WSS; each clipped to [1, 5].
    PESQ is wide-band P.862.2 (the `pesq` package) as in the Python evaluation code the
    VoiceBank-DEMAND literature uses; the 2008 paper used raw narrow-band P.862.

    Args:
        reference: clean signal.
        estimate: signal to score.
        sr: sample rate of `reference` in Hz; both signals are resampled to 16 kHz.
        pesq_score: a PESQ value already computed for this pair (saves a second PESQ run).
        estimate_sr: sample rate of `estimate`; None = `sr`.
        align: resample and trim instead of raising on a rate or length mismatch.

    Returns:
        The three ratings and LLR, WSS, segmental SNR and PESQ.

    Shapes:
        reference, estimate: (N,) or (1, N).

    Raises:
        MetricError: mismatched rates or lengths (without `align`), silent reference, shorter than
            one 30 ms frame, or PESQ failed.
    """
    ref, est = check_pair(reference, estimate, sr, estimate_sr=estimate_sr, align=align)
    ref, est = to_rate(ref, sr, INTRUSIVE_SR), to_rate(est, sr, INTRUSIVE_SR)
    frame_layout(ref.size, INTRUSIVE_SR)  # fail early on a too-short signal
    if pesq_score is None:
        pesq_score = pesq(ref, est, INTRUSIVE_SR)
    ref, est = ref + MATLAB_EPS, est + MATLAB_EPS  # as composite.m does
    llr = kept_mean(llr_frames(ref, est, INTRUSIVE_SR))
    wss = kept_mean(wss_frames(ref, est, INTRUSIVE_SR))
    ssnr = float(np.mean(segmental_snr_frames(ref, est, INTRUSIVE_SR)))
    parts = np.array([1.0, llr, pesq_score, wss, ssnr])
    csig, cbak, covl = (
        float(np.clip(parts @ np.array(w), 1.0, 5.0)) for w in (CSIG_WEIGHTS, CBAK_WEIGHTS, COVL_WEIGHTS)
    )
    return Composite(csig, cbak, covl, float(pesq_score), llr, wss, ssnr)


def kept_mean(values: np.ndarray) -> float:
    """Mean of the smallest round(0.95 T) values (MATLAB's round: halves away from zero)."""
    kept = int(np.floor(values.size * KEPT_SHARE + 0.5))
    return float(np.mean(np.sort(values)[:kept]))


def llr_frames(reference: np.ndarray, estimate: np.ndarray, sr: int) -> np.ndarray:
    """Log-likelihood ratio per frame: log(a_e R_r a_e^T / a_r R_r a_r^T); (N,), (N,) -> (T,).

    a_r, a_e are the LPC polynomials of the reference and estimate frames (Levinson-Durbin on
    the autocorrelation), R_r the reference frame's autocorrelation (Toeplitz) matrix.
    """
    order = LPC_ORDER_NARROW if sr < 10_000 else LPC_ORDER
    r_ref = _autocorrelation(hu_loizou_frames(reference, sr), order)
    a_ref, a_est = _lpc(r_ref), _lpc(_autocorrelation(hu_loizou_frames(estimate, sr), order))
    lags = np.abs(np.arange(order + 1)[:, None] - np.arange(order + 1)[None, :])
    toeplitz = r_ref[:, lags]  # (T, P+1, P+1)
    numerator = np.einsum("ti,tij,tj->t", a_est, toeplitz, a_est)
    denominator = np.einsum("ti,tij,tj->t", a_ref, toeplitz, a_ref)
    return np.log(numerator / denominator)


def _autocorrelation(frames: np.ndarray, order: int) -> np.ndarray:
    """Lags 0..order of each frame; (T, W) -> (T, order + 1)."""
    w = frames.shape[1]
    return np.stack([np.sum(frames[:, : w - k] * frames[:, k:], axis=1) for k in range(order + 1)], axis=1)


def _lpc(r: np.ndarray) -> np.ndarray:
    """Levinson-Durbin as in composite.m's `lpcoeff`: (T, P + 1) lags -> (T, P + 1) polynomial [1, -a]."""
    frames, order = r.shape[0], r.shape[1] - 1
    a = np.ones((frames, order))
    energy = r[:, 0].copy()
    for m in range(order):
        past = a[:, :m].copy()
        reflection = (r[:, m + 1] - np.sum(past * r[:, m:0:-1], axis=1)) / energy
        a[:, m] = reflection
        a[:, :m] = past - reflection[:, None] * past[:, ::-1]
        energy = (1.0 - reflection**2) * energy
    return np.concatenate([np.ones((frames, 1)), -a], axis=1)


def wss_frames(reference: np.ndarray, estimate: np.ndarray, sr: int) -> np.ndarray:
    """Weighted spectral slope distance per frame (Klatt 1982, composite.m's `wss`); (N,), (N,) -> (T,)."""
    win = frame_layout(reference.size, sr)[0]
    n_fft = 1 << int(np.ceil(np.log2(2 * win)))
    filters = _critical_band_filters(n_fft, sr)  # (25, n_fft / 2)
    slopes, weights = [], []
    for x in (reference, estimate):
        spec = np.abs(np.fft.rfft(hu_loizou_frames(x, sr), n_fft)[:, : n_fft // 2]) ** 2
        energy_db = 10.0 * np.log10(np.maximum(spec @ filters.T, WSS_MIN_ENERGY))  # (T, 25)
        slope = np.diff(energy_db, axis=1)  # (T, 24)
        below = energy_db[:, :-1]
        w_max = WSS_KMAX / (WSS_KMAX + energy_db.max(axis=1, keepdims=True) - below)
        w_loc = WSS_KLOCMAX / (WSS_KLOCMAX + _nearest_peak(energy_db, slope) - below)
        slopes.append(slope)
        weights.append(w_max * w_loc)
    w = (weights[0] + weights[1]) / 2.0
    return np.sum(w * (slopes[0] - slopes[1]) ** 2, axis=1) / np.sum(w, axis=1)


def _critical_band_filters(n_fft: int, sr: int) -> np.ndarray:
    """Gaussian-shaped critical-band weights over the first n_fft / 2 bins, zero below -30 dB; (25, n_fft / 2)."""
    half = n_fft // 2
    centre = np.floor(CENTRE_HZ / (sr / 2) * half)
    width = BANDWIDTH_HZ / (sr / 2) * half
    norm = np.log(BANDWIDTH_HZ[0]) - np.log(BANDWIDTH_HZ)
    bins = np.arange(half)
    filters = np.exp(-11.0 * ((bins[None, :] - centre[:, None]) / width[:, None]) ** 2 + norm[:, None])
    min_factor = np.exp(WSS_FLOOR_DB / (2.0 * 2.303))  # composite.m's -30 dB point, ln(10) as 2.303
    return filters * (filters > min_factor)


def _nearest_peak(energy_db: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """composite.m's local peak per band: where the slope rises, the energy just before the first
    non-rising slope to the right; else the energy just after the last rising slope to the left.

    Shapes:
        energy_db: (T, K), slope: (T, K - 1) -> (T, K - 1).
    """
    bands = slope.shape[1]
    rising = slope > 0
    first_flat = np.full(slope.shape, bands)  # first n >= i with slope[n] <= 0, else K - 1
    for i in range(bands - 1, -1, -1):
        after = first_flat[:, i + 1] if i + 1 < bands else bands
        first_flat[:, i] = np.where(rising[:, i], after, i)
    last_rise = np.full(slope.shape, -1)  # last n <= i with slope[n] > 0, else -1
    for i in range(bands):
        before = last_rise[:, i - 1] if i > 0 else -1
        last_rise[:, i] = np.where(rising[:, i], i, before)
    index = np.where(rising, first_flat - 1, last_rise + 1)
    return np.take_along_axis(energy_db, index, axis=1)

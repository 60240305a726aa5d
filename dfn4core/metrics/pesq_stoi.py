"""PESQ (ITU-T P.862 narrow-band, P.862.2 wide-band) and STOI/ESTOI, both at 16 kHz.

Thin wrappers over the `pesq` and `pystoi` packages: they check the pair, resample both signals
to 16 kHz with soxr, and turn the packages' failures into MetricError.
"""

from __future__ import annotations

import warnings
from typing import Any

from dfn4core.metrics.inputs import INTRUSIVE_SR, MetricError, check_pair, to_rate

PESQ_MODES = ("wb", "nb")
# pystoi's analysis at its 10 kHz: 30 frames of 256 samples, hop 128 (shorter input: an AxisError deep inside)
STOI_MIN_S = (256 + 29 * 128) / 10_000


def pesq(
    reference: Any,
    estimate: Any,
    sr: int,
    *,
    mode: str = "wb",
    estimate_sr: int | None = None,
    align: bool = False,
) -> float:
    """Perceptual Evaluation of Speech Quality, MOS-LQO.

    ITU-T P.862 (narrow-band, `mode="nb"`, mapped by P.862.1) and P.862.2 (wide-band,
    `mode="wb"`), computed by the `pesq` package (the ITU reference C code) on both signals
    resampled to 16 kHz.

    Args:
        reference: clean signal.
        estimate: signal to score.
        sr: sample rate of `reference` in Hz.
        mode: "wb" (wide-band) or "nb" (narrow-band).
        estimate_sr: sample rate of `estimate`; None = `sr`.
        align: resample and trim instead of raising on a rate or length mismatch.

    Returns:
        MOS-LQO, about 1.0 (bad) to 4.64 (wb) or 4.55 (nb) for identical signals.

    Shapes:
        reference, estimate: (N,) or (1, N).

    Raises:
        MetricError: mismatched rates or lengths (without `align`), silent reference, or PESQ
            found no speech (too short, no utterance).
    """
    if mode not in PESQ_MODES:
        raise MetricError(f"PESQ mode must be one of {PESQ_MODES}, got {mode!r}")
    ref, est = check_pair(reference, estimate, sr, estimate_sr=estimate_sr, align=align)
    ref, est = to_rate(ref, sr, INTRUSIVE_SR), to_rate(est, sr, INTRUSIVE_SR)
    import pesq as pesq_pkg

    try:
        return float(pesq_pkg.pesq(INTRUSIVE_SR, ref, est, mode))
    except pesq_pkg.PesqError as err:
        message = err.args[0].decode() if err.args and isinstance(err.args[0], bytes) else str(err)
        raise MetricError(f"PESQ failed: {message}") from err


def stoi(
    reference: Any,
    estimate: Any,
    sr: int,
    *,
    extended: bool = False,
    estimate_sr: int | None = None,
    align: bool = False,
) -> float:
    """Short-Time Objective Intelligibility, or its extended version (ESTOI).

    STOI: Taal, Hendriks, Heusdens, Jensen, IEEE TASLP 19(7), 2011. ESTOI: Jensen & Taal,
    IEEE/ACM TASLP 24(11), 2016. Computed by `pystoi` (which works at 10 kHz internally) on
    both signals resampled to 16 kHz.

    Args:
        reference: clean signal.
        estimate: signal to score.
        sr: sample rate of `reference` in Hz.
        extended: ESTOI instead of STOI.
        estimate_sr: sample rate of `estimate`; None = `sr`.
        align: resample and trim instead of raising on a rate or length mismatch.

    Returns:
        Intelligibility index, 1.0 for identical signals.

    Shapes:
        reference, estimate: (N,) or (1, N).

    Raises:
        MetricError: mismatched rates or lengths (without `align`), a silent reference, a signal
            shorter than STOI_MIN_S, or too few non-silent frames (pystoi would warn and return 1e-5).
    """
    ref, est = check_pair(reference, estimate, sr, estimate_sr=estimate_sr, align=align)
    ref, est = to_rate(ref, sr, INTRUSIVE_SR), to_rate(est, sr, INTRUSIVE_SR)
    if ref.size < STOI_MIN_S * INTRUSIVE_SR:
        name = "ESTOI" if extended else "STOI"
        raise MetricError(
            f"too short for {name}: {ref.size / INTRUSIVE_SR * 1000:.0f} ms, it needs at least {STOI_MIN_S * 1000:.0f} ms"
        )
    from pystoi import stoi as pystoi_stoi

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(pystoi_stoi(ref, est, INTRUSIVE_SR, extended=extended))
    for w in caught:
        if issubclass(w.category, RuntimeWarning) and "Not enough STFT frames" in str(w.message):
            raise MetricError("STOI failed: too few non-silent frames in the reference")
    return value


def estoi(reference: Any, estimate: Any, sr: int, *, estimate_sr: int | None = None, align: bool = False) -> float:
    """Extended STOI (Jensen & Taal 2016): `stoi(..., extended=True)`."""
    return stoi(reference, estimate, sr, extended=True, estimate_sr=estimate_sr, align=align)

"""The named metrics `evaluate` reports, and scoring one signal with each failure kept as a reason."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dfn4core.errors import ConfigError, MetricError
from dfn4core.metrics.composite import composite
from dfn4core.metrics.dnsmos import dnsmos
from dfn4core.metrics.pesq_stoi import pesq, stoi
from dfn4core.metrics.sdr import segmental_snr, si_sdr

INTRUSIVE = ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "ssnr", "csig", "cbak", "covl")
NON_INTRUSIVE = ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808")
ALL_METRICS = INTRUSIVE + NON_INTRUSIVE
GROUPS = {
    "pesq": ("pesq_wb",),
    "composite": ("csig", "cbak", "covl"),
    "dnsmos": NON_INTRUSIVE,
    "intrusive": INTRUSIVE,
    "all": ALL_METRICS,
}

Unit = Callable[..., dict[str, float]]  # (reference, estimate, sr, values so far, dnsmos threads) -> values


def parse_metrics(names: str | Sequence[str] | None, *, reference: bool = True) -> tuple[str, ...]:
    """Expands metric names and groups into metric names, in the canonical order.

    Args:
        names: e.g. "pesq,stoi,dnsmos" or ["pesq_wb", "composite"]; groups are pesq (= pesq_wb),
            composite (csig, cbak, covl), dnsmos (sig, bak, ovrl, p808), intrusive, all.
            None = all metrics the set allows.
        reference: whether the set has clean references (else only DNSMOS is possible).

    Returns:
        Metric names, each once, ordered as ALL_METRICS.

    Raises:
        ConfigError: an unknown name, none given, or an intrusive metric without references.
    """
    if names is None:
        return ALL_METRICS if reference else NON_INTRUSIVE
    parts = names.split(",") if isinstance(names, str) else list(names)
    wanted: set[str] = set()
    for part in (p.strip().lower() for p in parts if p.strip()):
        if part not in GROUPS and part not in ALL_METRICS:
            known = ", ".join((*GROUPS, *ALL_METRICS))
            raise ConfigError(f"unknown metric {part!r}; choose from {known}")
        wanted.update(GROUPS.get(part, (part,)))
    if not wanted:
        raise ConfigError("no metric given")
    blind = sorted(wanted & set(INTRUSIVE))
    if not reference and blind:
        raise ConfigError(f"this set has no clean references, so only DNSMOS can be computed, not {', '.join(blind)}")
    return tuple(m for m in ALL_METRICS if m in wanted)


def _pesq_unit(mode: str) -> Unit:
    return lambda ref, est, sr, done, threads: {f"pesq_{mode}": pesq(ref, est, sr, mode=mode)}


def _composite_unit(
    ref: Any, est: np.ndarray, sr: int, done: dict[str, float], threads: int | None
) -> dict[str, float]:
    c = composite(ref, est, sr, pesq_score=done.get("pesq_wb"))
    return {"csig": c.csig, "cbak": c.cbak, "covl": c.covl}


def _dnsmos_unit(ref: Any, est: np.ndarray, sr: int, done: dict[str, float], threads: int | None) -> dict[str, float]:
    s = dnsmos(est, sr, threads=threads)
    return {"dnsmos_sig": s.sig, "dnsmos_bak": s.bak, "dnsmos_ovrl": s.ovrl, "dnsmos_p808": s.p808}


# Each unit computes a group of metrics at once; pesq_wb comes before composite, which reuses it.
_UNITS: tuple[tuple[tuple[str, ...], Unit], ...] = (
    (("pesq_wb",), _pesq_unit("wb")),
    (("pesq_nb",), _pesq_unit("nb")),
    (("stoi",), lambda ref, est, sr, done, threads: {"stoi": stoi(ref, est, sr)}),
    (("estoi",), lambda ref, est, sr, done, threads: {"estoi": stoi(ref, est, sr, extended=True)}),
    (("si_sdr",), lambda ref, est, sr, done, threads: {"si_sdr": si_sdr(ref, est, sr)}),
    (("ssnr",), lambda ref, est, sr, done, threads: {"ssnr": segmental_snr(ref, est, sr)}),
    (("csig", "cbak", "covl"), _composite_unit),
    (NON_INTRUSIVE, _dnsmos_unit),
)


def score(
    estimate: np.ndarray,
    sr: int,
    metrics: Sequence[str],
    *,
    reference: np.ndarray | None = None,
    dnsmos_threads: int | None = None,
) -> tuple[dict[str, float], dict[str, str]]:
    """Computes the named metrics of one estimate; one that cannot be computed gets a reason.

    Args:
        estimate: signal to score, same rate and length as `reference`.
        sr: their sample rate in Hz.
        metrics: names from ALL_METRICS.
        reference: clean signal; None for DNSMOS only.
        dnsmos_threads: onnxruntime threads for DNSMOS; None = onnxruntime's choice.

    Returns:
        (values, missing): metric -> value, and metric -> one-line reason for those not computed.

    Shapes:
        estimate, reference: (N,).
    """
    values: dict[str, float] = {}
    missing: dict[str, str] = {}
    for names, unit in _UNITS:
        wanted = [m for m in names if m in metrics]
        if not wanted:
            continue
        try:
            if reference is None and names != NON_INTRUSIVE:
                raise MetricError("no clean reference")
            out = unit(reference, estimate, sr, values, dnsmos_threads)
            values.update({m: out[m] for m in wanted})
        except MetricError as err:
            missing.update({m: str(err) for m in wanted})
    return values, missing

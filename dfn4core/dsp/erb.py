"""ERB band layout and the band <-> bin matrices used for ERB features and gains.

Band edges are equally spaced on the ERB-rate scale of Glasberg & Moore (1990),
ERB-rate(f) = 21.4 log10(1 + 0.00437 f), then widened so every band has at least
`min_nb_freqs` bins; every bin belongs to exactly one band.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def hz_to_erb_rate(freq_hz: float) -> float:
    return 21.4 * math.log10(1.0 + 0.00437 * freq_hz)


def erb_rate_to_hz(erb: float) -> float:
    return (10 ** (erb / 21.4) - 1.0) / 0.00437


def erb_widths(sr: int, fft_size: int, nb_bands: int, min_nb_freqs: int) -> list[int]:
    """Number of FFT bins in each ERB band, low to high; they sum to fft_size // 2 + 1."""
    n_freqs = fft_size // 2 + 1
    if nb_bands * min_nb_freqs > n_freqs:
        raise ValueError(f"{nb_bands} bands of >= {min_nb_freqs} bins do not fit {n_freqs} bins")
    top = hz_to_erb_rate(sr / 2)
    bin_hz = sr / fft_size
    edges, prev = [], 0
    for band in range(1, nb_bands + 1):
        upper = round(erb_rate_to_hz(top * band / nb_bands) / bin_hz) + (1 if band == nb_bands else 0)
        # Leave room for the bands still to come, then enforce the minimum width.
        upper = min(max(upper, prev + min_nb_freqs), n_freqs - (nb_bands - band) * min_nb_freqs)
        edges.append(upper)
        prev = upper
    edges[-1] = n_freqs
    return [hi - lo for lo, hi in zip([0] + edges[:-1], edges)]


def erb_matrices(widths: list[int]) -> tuple[Tensor, Tensor]:
    """Band-averaging matrix (F, E) (each column sums to 1) and band-to-bin expansion (E, F)."""
    n_freqs, nb_bands = sum(widths), len(widths)
    expand = torch.zeros(nb_bands, n_freqs)
    start = 0
    for band, width in enumerate(widths):
        expand[band, start : start + width] = 1.0
        start += width
    average = (expand / expand.sum(1, keepdim=True)).T.contiguous()
    return average, expand

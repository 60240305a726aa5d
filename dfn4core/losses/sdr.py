"""The SI-SDR training term: minus the scale-invariant SDR of the output wave, per item, capped."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dfn4core.metrics.sdr import si_sdr_batch

# Mean power under which a clean reference counts as silent (-100 dBFS): its SI-SDR is undefined.
SILENT_POWER = 1e-10


class SiSdrLoss(nn.Module):
    """-mean over items of min(SI-SDR(clean, enhanced), max_db), in dB (the metric of `dfn4 evaluate`).

    The spectral terms compare compressed magnitudes, which weigh quiet bins up; this term weighs
    the wave's error by its energy, as the SI-SDR metric does. Items with a silent reference are
    left out (a batch of only such items gives 0, with a graph). Shapes: enhanced, clean (B, N) -> ().
    """

    def __init__(self, max_db: float = 50.0):
        super().__init__()
        self.max_db = max_db

    def forward(self, enhanced: Tensor, clean: Tensor) -> Tensor:
        centred = clean - clean.mean(-1, keepdim=True)
        keep = centred.pow(2).mean(-1) > SILENT_POWER
        if not bool(keep.any()):
            return enhanced.sum() * 0.0
        sdr = si_sdr_batch(clean[keep], enhanced[keep]).clamp(max=self.max_db)
        return -sdr.mean()

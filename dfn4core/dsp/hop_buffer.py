"""The hop buffer of a streaming enhancer: chunks of any size in, as many samples out, `latency` behind,
with the attenuation limit's dry mix. Written once for torch tensors and numpy arrays alike (the caller
gives `zeros` and `cat`), so the torch `Enhancer` and the torch-free `OnnxEnhancer` share it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dfn4core.dsp.attenuation import atten_lim_mix

Array = Any  # a (C, N) torch.Tensor or numpy array; this module imports neither library


class HopBuffer:
    """Cuts a stream into whole hops for the model and hands back as many samples as it was given.

    The output lags the input by `latency` = delay + hop samples: the model's own delay, plus one hop
    of leading zeros so that a chunk shorter than a hop still gets its length back.

    Args:
        hop: samples per model step.
        delay: samples the model's output lags its input (window and lookahead).
        atten_lim_db: limit of the noise attenuation in dB (None: no limit, no dry mix).
        zeros: `zeros(n)` gives (C, n) zeros of the stream's type, device and dtype.
        cat: joins (C, N_i) arrays along the time axis.
    """

    def __init__(self, hop: int, delay: int, atten_lim_db: float | None,
                 zeros: Callable[[int], Array], cat: Callable[[Sequence[Array]], Array]):  # fmt: skip
        self.hop, self.delay, self.latency = hop, delay, delay + hop
        self.mix = atten_lim_mix(atten_lim_db)
        self._zeros, self._cat = zeros, cat
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next sample starts a new stream."""
        self._pending = self._zeros(0)
        self._ready = self._zeros(self.hop)
        self._dry = self._zeros(self.delay)  # the noisy input `delay` samples back, for the dry mix

    def push(self, x: Array, enhance: Callable[[Array], Array]) -> Array:
        """Adds `x` (C, N); `enhance` gets every whole hop now complete, (C, k * hop) -> (C, k * hop).

        Returns:
            (C, N) enhanced samples, `latency` behind the input.
        """
        pending = self._cat((self._pending, x))
        whole = pending.shape[1] // self.hop * self.hop
        self._pending = pending[:, whole:]
        if whole:
            noisy = pending[:, :whole]
            wet = enhance(noisy)
            if self.mix:
                dry = self._cat((self._dry, noisy))
                self._dry = dry[:, dry.shape[1] - self.delay :]
                wet = (1.0 - self.mix) * wet + self.mix * dry[:, :whole]
            self._ready = self._cat((self._ready, wet))
        n = x.shape[1]
        out, self._ready = self._ready[:, :n], self._ready[:, n:]
        return out


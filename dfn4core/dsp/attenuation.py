"""The attenuation limit: how much of the (delayed) noisy input goes back into the output.

Used by `hop_buffer.HopBuffer`, which the torch `Enhancer` and the onnxruntime `OnnxEnhancer` share;
plain Python, so the torch-free runtime can import it.
"""

from __future__ import annotations

from dfn4core.errors import ConfigError


def atten_lim_mix(atten_lim_db: float | None) -> float:
    """Share of the (delayed) noisy input mixed into the output so noise drops by at most atten_lim_db.

    Raises:
        ConfigError: a negative limit.
    """
    if atten_lim_db is None:
        return 0.0
    if atten_lim_db < 0:
        raise ConfigError(f"atten_lim_db must be >= 0, got {atten_lim_db}")
    return 10.0 ** (-atten_lim_db / 20.0)

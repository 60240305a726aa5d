"""A small generated corpus (speech-like harmonic sweeps and noise) and a data config over it.

A plain module (pytest's pythonpath includes tests/), so worker processes and other test folders
can import it by name.
"""

from pathlib import Path

import numpy as np
import soundfile as sf

from dfn4core.data.config import DataConfig
from dfn4core.synth import speech_like  # the generator of dfn4 quantize's calibration audio


def write_corpus(root: Path, n_speech: int = 6, seconds: float = 2.0, seed: int = 0) -> dict[str, Path]:
    rng = np.random.default_rng(seed)
    dirs = {name: root / name for name in ("speech", "noise", "valid_speech", "valid_noise")}
    for d in dirs.values():
        d.mkdir(parents=True)
    for i in range(n_speech):
        sf.write(dirs["speech"] / f"s{i}.wav", speech_like(seconds, 16_000, rng), 16_000)
    for i in range(2):
        sf.write(dirs["valid_speech"] / f"v{i}.wav", speech_like(seconds, 48_000, rng), 48_000)
    white = rng.standard_normal(48_000 * 3).astype(np.float32) * 0.1
    brown = np.cumsum(rng.standard_normal(48_000 * 3)).astype(np.float32)
    sf.write(dirs["noise"] / "white.flac", white, 48_000)
    sf.write(dirs["noise"] / "brown.wav", 0.1 * brown / np.abs(brown).max(), 48_000)
    sf.write(dirs["valid_noise"] / "pink.wav", np.convolve(white, np.ones(8) / 8, "same"), 48_000)
    return dirs


def corpus_config(dirs: dict[str, Path], train_items: int, valid_items: int, segment_s: float, **kw) -> DataConfig:
    return DataConfig.from_dict(
        {
            "segment_s": segment_s,
            "snrs_db": [0, 5, 10],
            "train": {"num_items": train_items, "mix": [{"speech": [str(dirs["speech"])], "noise": [str(dirs["noise"])]}]},
            "valid": {
                "num_items": valid_items,
                "mix": [{"speech": [str(dirs["valid_speech"])], "noise": [str(dirs["valid_noise"])]}],
            },
            **kw,
        }
    )


class Crash(Exception):
    """Raised by `crash_at` to simulate a training process dying mid-run."""


def crash_at(step: int):
    """An on_progress callback that raises Crash when training reaches `step`."""

    def on_progress(p):
        if p.step == step:
            raise Crash

    return on_progress


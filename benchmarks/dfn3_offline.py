"""Offline real-time factor at one thread: a dfn4 model against DeepFilterNet3's torch model.

ARCHITECTURE.md section 6 asks the full's offline pass in torch to take no longer than
DeepFilterNet3's on the same machine. DeepFilterNet3 is not a dependency of dfn4, so its Python
package is read from a folder given on the command line, installed there without its
dependencies (torchaudio, which DFN3 needs only for audio files and resampling, is replaced by a
stub when it is missing):

    pip install --no-deps --target /tmp/dfn3pkg deepfilternet==0.5.6 deepfilterlib==0.5.6 loguru
    python benchmarks/dfn3_offline.py --dfn3-dir /tmp/dfn3pkg [--model full] [--rounds 40]

DFN3 is built by its own `df.deepfilternet3.init_model` from its published config (conv_ch 64,
embedding 256 wide with 3 GRU layers, DF decoder 256 wide with 2, order 5, lookahead 2, linear
groups 16 and 32) with random weights: the time does not depend on them. Three calls take turns in
every round, on the same 10 s of noise-like audio: DFN3's `df.enhance.enhance` (its Rust STFT and
features, the network, its Rust ISTFT: what a DFN3 user runs), DFN3's network alone on
precomputed features, and the dfn4 model as `dfn4 enhance` runs it (`fuse_for_inference`, STFT,
features and ISTFT in torch). Printed: median RTF of each, and the per-round ratios of dfn4 to
both DFN3 figures (median and 10th-90th percentile): only ratios within one run compare on a
machine whose speed drifts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfn4core.model.checkpoint import load_model  # noqa: E402
from dfn4core.model.fuse import fuse_for_inference  # noqa: E402

# DeepFilterNet3's published model and DSP settings (its config.ini), as DFN3's loader reads them.
DFN3_CONFIG = """[deepfilternet]
model = deepfilternet3
conv_ch = 64
conv_kernel_inp = 3,3
conv_kernel = 1,3
convt_kernel = 1,3
conv_lookahead = 2
emb_hidden_dim = 256
emb_num_layers = 3
emb_gru_skip = none
df_hidden_dim = 256
df_num_layers = 2
df_order = 5
df_lookahead = 2
df_gru_skip = groupedlinear
df_pathway_kernel_size_t = 5
linear_groups = 16
enc_linear_groups = 32
enc_concat = false
gru_type = squeeze
lsnr_dropout = false
mask_pf = false
df_n_iter = 1
[df]
sr = 48000
fft_size = 960
hop_size = 480
nb_erb = 32
nb_df = 96
norm_tau = 1
lsnr_max = 35
lsnr_min = -15
min_nb_erb_freqs = 2
df_order = 5
df_lookahead = 2
pad_mode = input_specf
"""


class _Stub(types.ModuleType):
    """A stand-in module: any name it is asked for is an empty class (DFN3's timed code uses none)."""

    def __getattr__(self, name: str) -> type:
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {})


def _stub_torchaudio() -> None:
    """An empty `torchaudio` when none is installed: DFN3 imports it (for audio files, resampling
    and evaluation) when its package is imported."""
    try:
        import torchaudio  # noqa: F401
    except ImportError:
        for name in ("", ".backend", ".backend.common", ".functional", ".transforms", ".compliance", ".compliance.kaldi"):
            sys.modules["torchaudio" + name] = _Stub("torchaudio" + name)


def load_dfn3(folder: Path):
    """DFN3's network (random weights), its `DF` state and its `enhance` function, from `folder`."""
    if not (folder / "df").is_dir() or not (folder / "libdf").is_dir():
        raise SystemExit(f"{folder}: no deepfilternet ('df') and deepfilterlib ('libdf') packages there (see --help)")
    sys.path.insert(0, str(folder))
    _stub_torchaudio()
    from df.config import config
    from df.deepfilternet3 import init_model
    from df.enhance import enhance
    from libdf import DF

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "config.ini")
        Path(path).write_text(DFN3_CONFIG)
        config.load(path, allow_defaults=True)
    state = DF(sr=48000, fft_size=960, hop_size=480, nb_bands=32, min_nb_erb_freqs=2)
    torch.manual_seed(0)
    return init_model(state).eval(), state, enhance


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dfn3-dir", type=Path, required=True, help="folder with deepfilternet and deepfilterlib")
    parser.add_argument("--model", default="full", help="dfn4 model name or checkpoint (default: full)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    dfn3, dfn3_state, dfn3_enhance = load_dfn3(args.dfn3_dir)
    ours = fuse_for_inference(load_model(args.model))
    hops = max(1, int(args.seconds * 100))
    audio = 0.05 * torch.randn(1, hops * 480, generator=torch.Generator().manual_seed(0))
    spec, erb, feat = torch.randn(1, 1, hops, 481, 2), torch.randn(1, 1, hops, 32), torch.randn(1, 1, hops, 96, 2)
    calls = {
        "DFN3 enhance()": lambda: dfn3_enhance(dfn3, dfn3_state, audio),
        "DFN3 network": lambda: dfn3(spec, erb, feat),
        f"dfn4 {args.model}": lambda: ours(audio),
    }
    times: dict[str, list[float]] = {name: [] for name in calls}
    with torch.no_grad():
        for call in calls.values():  # warm-up
            call()
        for _ in range(args.rounds):
            for name, call in calls.items():
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
    seconds = hops * 480 / 48000
    for name, t in times.items():
        print(f"{name:22s} RTF median {np.median(t) / seconds:.5f}")
    mine = np.array(times[f"dfn4 {args.model}"])
    for name in ("DFN3 enhance()", "DFN3 network"):
        ratio = mine / np.array(times[name])
        low, high = np.quantile(ratio, [0.1, 0.9])
        print(f"dfn4 / {name:15s} per round: median {np.median(ratio):.3f} (10-90 %: {low:.3f}-{high:.3f})")
    print(f"{args.rounds} rounds, {args.threads} thread(s), {seconds:.1f} s of audio")


if __name__ == "__main__":
    main()

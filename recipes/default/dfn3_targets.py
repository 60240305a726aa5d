"""Renders a paired training set whose targets are DeepFilterNet3's enhancement of the clean speech.

The real speech of data_real.toml is not studio-clean: game and e-learning recordings carry their
own noise floor (DNSMOS BAK of the validation references 2.4-4.1). Trained against those references,
a model learns to keep that floor, which DNSMOS penalises. This recipe mixes the training items of a
data config exactly as `dfn4 train` would (same seed, same items), then replaces each clean target by
the shipped `full` model's output on the clean speech alone (DeepFilterNet3's weights: the floor
removed, the speech kept), and writes NOISY_DIR/CLEAN_DIR pairs for a `[[train.paired]]` source
(data_real_dfn3.toml).

    python recipes/default/dfn3_targets.py --data recipes/default/data_real.toml --items 1200 \
        --out ~/dfn4-corpus/train_dfn3_targets
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from dfn4core.data.config import load_data_config  # noqa: E402
from dfn4core.data.loader import build_dataset  # noqa: E402
from dfn4core.model.checkpoint import load_model  # noqa: E402
from dfn4core.streaming import enhance  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="data config whose train split is mixed")
    p.add_argument("--out", type=Path, required=True, help="gets noisy/ and clean/ (the targets)")
    p.add_argument("--items", type=int, default=1200, help="items to render (default 1200)")
    p.add_argument("--model", default="dfn3",
                   help="the model that cleans the targets (default: dfn3, DeepFilterNet3's official weights)")
    p.add_argument("--epoch", type=int, default=0, help="which epoch's items of the train split")
    args = p.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.model, "cpu", dfn3=True)
    sr = model.cfg.dsp.sr
    dataset = build_dataset(load_data_config(args.data), "train", model.cfg.dsp)
    dataset.set_epoch(args.epoch)
    noisy_dir, clean_dir = args.out / "noisy", args.out / "clean"
    noisy_dir.mkdir(parents=True, exist_ok=True)
    clean_dir.mkdir(parents=True, exist_ok=True)
    count = min(args.items, len(dataset))
    for i in range(count):
        name = f"{i:06d}.wav"
        if (clean_dir / name).exists():
            continue
        item = dataset[i]
        noisy, clean = item["noisy"].numpy(), item["clean"].numpy()
        with torch.no_grad():
            target = enhance(model, clean, sr)
        sf.write(noisy_dir / name, noisy, sr, subtype="FLOAT")
        sf.write(clean_dir / f".{name}", target.astype(np.float32), sr, subtype="FLOAT", format="WAV")
        (clean_dir / f".{name}").rename(clean_dir / name)  # the clean file marks the pair complete
        if (i + 1) % 100 == 0:
            print(f"{i + 1}/{count}", flush=True)


if __name__ == "__main__":
    main()

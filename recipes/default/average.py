"""Move a model's weights towards fine-tunes of it: BASE + sum_i w_i * (MODEL_i - BASE).

A fine-tune that starts from a model and the model itself lie in one basin, so the models between
them are models too, and often better than either end ("model soups": Wortsman et al., ICML 2022;
WiSE-FT: Wortsman et al., CVPR 2022, interpolating a zero-shot and a fine-tuned model), and the
weight changes of several fine-tunes of one model can be added ("task arithmetic": Ilharco et al.,
ICLR 2023). One `--add MODEL:0.3` is the interpolation 0.7 * BASE + 0.3 * MODEL. Issue 12's shipped
full model is such a point near DeepFilterNet3's weights; the weights are chosen on the selection
half of the real validation set (recipes/default/README.md).

    python recipes/default/average.py full --add runs/ft/checkpoints/step_00000100.pt:0.3 -o runs/avg.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dfn4core.model.checkpoint import load_model, save_model  # noqa: E402
from dfn4core.pretrained import resolve_model  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("base", help="the model fine-tuned from: a shipped name or a checkpoint")
    p.add_argument("--add", action="append", required=True, metavar="MODEL:WEIGHT",
                   help="a fine-tune of BASE (same config) and the weight of its change, e.g. runs/ft/best.pt:0.3")
    p.add_argument("-o", "--out", type=Path, required=True, help="the result (.pt or .safetensors)")
    args = p.parse_args()
    base = load_model(resolve_model(args.base))
    start = base.state_dict()
    moved = {k: v.clone() for k, v in start.items()}
    for spec in args.add:
        path, _, weight = spec.rpartition(":")
        try:
            w = float(weight)
        except ValueError:
            raise SystemExit(f"--add takes MODEL:WEIGHT, got {spec!r}") from None
        tuned = load_model(resolve_model(path))
        if tuned.cfg != base.cfg:
            raise SystemExit(f"{path} has another config than {args.base}: only fine-tunes of BASE can be added")
        for k, v in tuned.state_dict().items():
            if v.is_floating_point():  # integer buffers (counters) stay BASE's
                moved[k] += w * (v - start[k])
    base.load_state_dict(moved)
    print(save_model(base, args.out))


if __name__ == "__main__":
    main()

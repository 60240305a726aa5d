"""Loss and validation curves of training runs, from their metrics.jsonl, as one PNG.

    python recipes/default/plot_curves.py runs/lite -o docs/img/training_lite.png

The same as `dfn4 curves runs/lite -o docs/img/training_lite.png` (dfn4core.plot.plot_training): left,
every training loss term (log scale) against the step; right, validation SI-SDR and PESQ (left out
when no run validated). Needs matplotlib (`pip install "dfn4[plot]"`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from dfn4core.errors import Dfn4Error  # noqa: E402 - after the path set-up, as in summarise.py
from dfn4core.plot import plot_training  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", type=Path, nargs="+", help="training run folders (with metrics.jsonl)")
    p.add_argument("-o", "--out", type=Path, required=True, help="PNG to write")
    args = p.parse_args()
    try:
        print(plot_training(args.runs, args.out))
    except Dfn4Error as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()

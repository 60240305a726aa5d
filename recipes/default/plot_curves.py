"""Loss and validation curves of training runs, from their metrics.jsonl, as one PNG.

    python recipes/default/plot_curves.py runs/lite -o docs/img/training_lite.png

Left: every training loss term (log scale) against the step; right: validation SI-SDR and PESQ
(left out when no run validated).
Needs matplotlib (`pip install "dfn4[plot]"`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_rows(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path}: no such file (is {run_dir} a training run folder?)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", type=Path, nargs="+", help="training run folders (with metrics.jsonl)")
    p.add_argument("-o", "--out", type=Path, required=True, help="PNG to write")
    args = p.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {run: read_rows(run) for run in args.runs}
    has_valid = any(r.get("kind") == "valid" for rows in runs.values() for r in rows)
    if has_valid:
        fig, (ax_loss, ax_si, ax_pesq) = plt.subplots(1, 3, figsize=(15, 4.2))
    else:  # runs without a validation set (valid_every = 0): the losses alone
        fig, ax_loss = plt.subplots(1, 1, figsize=(7, 4.2))
        ax_si = ax_pesq = None
    for run, rows in runs.items():
        train = [r for r in rows if r.get("kind") == "train"]
        valid = [r for r in rows if r.get("kind") == "valid"]
        steps = [r["step"] for r in train]
        terms = sorted({k for r in train for k, v in r.items()
                        if isinstance(v, (int, float)) and k not in ("step", "lr", "time", "skipped")})  # fmt: skip
        for k in terms:
            ax_loss.plot(steps, [r.get(k, float("nan")) for r in train], label=f"{run.name}: {k}", lw=1)
        for ax, key in ((ax_si, "si_sdr"), (ax_pesq, "pesq")) if has_valid else ():
            pts = [(r["step"], r[key]) for r in valid if key in r]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=run.name)
            noisy = [(r["step"], r[f"{key}_noisy"]) for r in valid if f"{key}_noisy" in r]
            if noisy:
                ax.plot(*zip(*noisy), ls="--", color="gray", label=f"{run.name}: noisy input")
    ax_loss.set(xlabel="step", ylabel="training loss", yscale="log", title="training losses")
    if has_valid:
        ax_si.set(xlabel="step", ylabel="dB", title="validation SI-SDR")
        ax_pesq.set(xlabel="step", ylabel="PESQ-WB", title="validation PESQ")
    for ax in (ax_loss, ax_si, ax_pesq) if has_valid else (ax_loss,):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(args.out)


if __name__ == "__main__":
    main()

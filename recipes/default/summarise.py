"""Markdown tables of `dfn4 evaluate` results on the real validation set, overall and per noise category / SNR.

Reads OUT/scores.csv of each `dfn4 evaluate --out OUT` folder given (one system each: the model's rows, or
the `--enhanced-dir` rows), joins them with valid_real/pairs.csv by file name, and prints:
  - overall: mean +- 95 % confidence interval (Student t) per system, the noisy input first;
  - per category, per SNR (and any other pairs.csv column given to --by): the means.

    python recipes/default/summarise.py ~/dfn4-eval/real/full ~/dfn4-eval/real/lite
    python recipes/default/summarise.py eval/a eval/b --names A,B --by category,snr_db,band --metrics pesq_wb,stoi
    python recipes/default/summarise.py eval/full eval/dfn3 --names full,dfn3 --against dfn3   # paired differences
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from dfn4core.metrics.results import mean_ci  # noqa: E402 - the same statistics as summary.json

METRICS = {"pesq_wb": "PESQ-WB", "stoi": "STOI", "si_sdr": "SI-SDR (dB)", "dnsmos_ovrl": "DNSMOS OVRL",
           "dnsmos_sig": "DNSMOS SIG", "dnsmos_bak": "DNSMOS BAK", "pesq_nb": "PESQ-NB", "estoi": "ESTOI"}
DEFAULT_METRICS = ("pesq_wb", "stoi", "si_sdr", "dnsmos_ovrl")
SYSTEM_ROWS = ("model", "enhanced")  # the scored system of an evaluate folder (noisy is the input)
WIDE_BAND_HZ = 16_000


def read_scores(folder: Path) -> tuple[list[str], list[dict]]:
    path = folder / "scores.csv"
    if not path.exists():
        raise SystemExit(f"{path} not found: give the --out folder of a `dfn4 evaluate` run")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def group_value(pair: dict, by: str) -> str:
    if by == "band":  # wide-band (>= 16 kHz) or narrow-band speech, from the rendered clean file
        return "wide (>=16 kHz)" if float(pair["speech_bandwidth_hz"]) >= WIDE_BAND_HZ else "narrow (<16 kHz)"
    return pair[by]


def sort_key(value: str) -> tuple:
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def fmt(x: float | None, digits: int) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+", type=Path, help="--out folders of `dfn4 evaluate` (one system each)")
    p.add_argument("--pairs", type=Path, default=Path("~/dfn4-corpus/valid_real/pairs.csv"),
                   help="pairs.csv of the set (default ~/dfn4-corpus/valid_real/pairs.csv)")
    p.add_argument("--names", help="comma-separated system names (default: the folder names)")
    p.add_argument("--metrics", default=",".join(DEFAULT_METRICS), help="metric columns, those found are shown")
    p.add_argument("--by", default="category,snr_db", help="pairs.csv columns to break down by (and 'band')")
    p.add_argument("--against", metavar="NAME",
                   help="also print each system's paired difference from system NAME (mean ± 95 %% CI over files)")
    p.add_argument("--all-files", action="store_true",
                   help="each system's mean over all its files (default: only the files every system has scored)")
    args = p.parse_args()

    with open(args.pairs.expanduser(), newline="") as f:
        pairs = {Path(r["file"]).stem: r for r in csv.DictReader(f)}
    names = args.names.split(",") if args.names else [d.expanduser().resolve().name for d in args.folders]
    if len(names) != len(args.folders):
        raise SystemExit("--names needs one name per folder")
    wanted = [m for m in args.metrics.split(",") if m]
    scores: dict[str, dict[str, dict]] = {}  # system -> key -> row
    found: set[str] = set()
    for name, folder in zip(names, args.folders, strict=True):
        header, rows = read_scores(folder.expanduser())
        found |= set(header)
        for r in rows:
            if r["key"] not in pairs or r["status"] == "failed":
                continue
            system = "noisy" if r["system"] == "noisy" else name if r["system"] in SYSTEM_ROWS else None
            if system is not None:
                scores.setdefault(system, {}).setdefault(r["key"], r)  # noisy: the first folder's rows
    metrics = [m for m in wanted if m in found]
    systems = [s for s in ("noisy", *names) if s in scores]
    if not metrics or not systems:
        raise SystemExit(f"no rows of {wanted} for the files of {args.pairs}")
    if not args.all_files:  # the files that every system has scored (a run still going, or one that failed)
        common = set.intersection(*(set(scores[s]) for s in systems))
        pairs = {k: v for k, v in pairs.items() if k in common}

    def values(system: str, metric: str, keys) -> list[float]:
        rows = scores[system]
        return [float(rows[k][metric]) for k in keys if k in rows and rows[k].get(metric, "") != ""]

    digits = {m: 2 if m in ("si_sdr",) else 3 for m in metrics}
    n_set = sum(1 for _ in open(args.pairs.expanduser())) - 1
    scope = "each system's files" if args.all_files else f"{len(pairs)} of the {n_set} pairs, scored by every system"
    print(f"### Overall ({args.pairs.expanduser().parent.name}: {scope}; mean ± 95 % CI)\n")
    print("| system | files | " + " | ".join(METRICS.get(m, m) for m in metrics) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in metrics) + " |")
    for s in systems:
        cells = []
        for m in metrics:
            st = mean_ci(values(s, m, pairs))
            ci = "" if st["ci95"] is None else f" ± {st['ci95']:.{digits[m]}f}"
            cells.append(f"{fmt(st['mean'], digits[m])}{ci}")
        print(f"| {s} | {len(values(s, metrics[0], pairs))} | " + " | ".join(cells) + " |")
    if args.against:
        if args.against not in systems:
            raise SystemExit(f"--against {args.against}: no such system (have {', '.join(systems)})")
        base = scores[args.against]
        print(f"\n### Paired difference from {args.against} (mean ± 95 % CI of the per-file difference)\n")
        print("| system | files | " + " | ".join(METRICS.get(m, m) for m in metrics) + " |")
        print("| --- | ---: | " + " | ".join("---:" for _ in metrics) + " |")
        for s in (s for s in systems if s != args.against):
            cells = []
            for m in metrics:
                keys = [k for k in pairs if base.get(k, {}).get(m, "") != "" and scores[s].get(k, {}).get(m, "") != ""]
                st = mean_ci([float(scores[s][k][m]) - float(base[k][m]) for k in keys])
                ci = "" if st["ci95"] is None else f" ± {st['ci95']:.{digits[m]}f}"
                sign = "+" if st["mean"] is not None and st["mean"] >= 0 else ""
                cells.append(f"{sign}{fmt(st['mean'], digits[m])}{ci}")
            print(f"| {s} | {len(pairs)} | " + " | ".join(cells) + " |")
    for by in [b for b in args.by.split(",") if b]:
        groups: dict[str, list[str]] = {}
        for key, pair in pairs.items():
            groups.setdefault(group_value(pair, by), []).append(key)
        order = sorted(groups, key=sort_key)
        print(f"\n### By {by} (means)\n")
        print(f"| {by} | pairs | " + " | ".join(f"{METRICS.get(m, m)} {s}" for m in metrics for s in systems) + " |")
        print("| --- | ---: | " + " | ".join("---:" for _ in metrics for _ in systems) + " |")
        for g in order:
            cells = [fmt(mean_ci(values(s, m, groups[g]))["mean"], digits[m]) for m in metrics for s in systems]
            print(f"| {g} | {len(groups[g])} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

"""PNG plots of results already on disk: a training run's curves (metrics.jsonl) and `evaluate`
scores per input SNR or noise category. Drawing needs matplotlib (the `plot` extra); reading and
grouping the results does not.
"""

from __future__ import annotations

import csv
import importlib.util
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dfn4core.errors import ConfigError
from dfn4core.metrics import results

METRICS_NAME = "metrics.jsonl"  # written by train.logbook.Logbook
NOT_TERMS = ("step", "lr", "time", "skipped", "kind")  # train-row fields that are not loss terms
VALID_KEYS = (("si_sdr", "validation SI-SDR", "dB"), ("pesq", "validation PESQ", "PESQ-WB"))
METADATA_NAME = "pairs.csv"  # per-file columns of a set (file, snr_db, category, ...), beside its noisy/
PLOT_METRICS = ("pesq_wb", "stoi", "si_sdr", "dnsmos_ovrl")  # drawn when scored; else the first four
SNR_BIN_DB = 5.0  # without an snr_db column the noisy input's SI-SDR, rounded to this, stands for its SNR


def require_matplotlib() -> None:
    """Raises ConfigError naming the `plot` extra when matplotlib is not installed."""
    if importlib.util.find_spec("matplotlib") is None:
        raise ConfigError("the plot needs matplotlib: pip install 'dfn4[plot]'")


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend; ConfigError naming the extra when missing."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """Lays out and writes a figure (creating its folder), then frees it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path


@dataclass(frozen=True)
class RunCurves:
    """One training run: each loss term and validation figure as (steps, values).

    Args:
        name: the run folder's name.
        train: loss term -> (steps, values) of the training rows.
        valid: key (si_sdr, pesq, si_sdr_noisy, ...) -> (steps, values) of the validation rows.
    """

    name: str
    train: dict[str, tuple[list[int], list[float]]]
    valid: dict[str, tuple[list[int], list[float]]]


def read_curves(run_dir: str | Path) -> RunCurves:
    """The curves in a run folder's metrics.jsonl.

    Raises:
        ConfigError: the folder has no metrics.jsonl (not a training run), or a line is not JSON.
    """
    run_dir = Path(run_dir)
    path = run_dir / METRICS_NAME
    if not path.is_file():
        raise ConfigError(f"{path}: no such file (is {run_dir} a `dfn4 train` run folder?)")
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except ValueError as err:
        raise ConfigError(f"{path}: not JSON lines ({err})") from err

    def series(kind: str, exclude: Sequence[str]) -> dict[str, tuple[list[int], list[float]]]:
        found: dict[str, tuple[list[int], list[float]]] = {}
        for r in rows:
            if r.get("kind") != kind:
                continue
            for k, v in r.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in exclude:
                    steps, values = found.setdefault(k, ([], []))
                    steps.append(int(r["step"]))
                    values.append(float(v))
        return found

    return RunCurves(run_dir.resolve().name, series("train", NOT_TERMS), series("valid", NOT_TERMS))


def plot_training(run_dirs: Sequence[str | Path], path: str | Path) -> Path:
    """Training loss terms (log scale) and the validation loss of each run, and beside them
    validation SI-SDR and PESQ with the noisy input's as a dashed line (left out when no run validated).

    Raises:
        ConfigError: matplotlib is missing, or a folder is not a training run.
    """
    runs = [read_curves(d) for d in run_dirs]
    plt = pyplot()
    has_valid = any(r.valid for r in runs)
    fig, axes = plt.subplots(1, 3 if has_valid else 1, figsize=(15, 4.2) if has_valid else (7, 4.2), squeeze=False)
    ax_loss, *ax_valid = axes[0]
    for run in runs:
        for term, (steps, values) in sorted(run.train.items()):
            ax_loss.plot(steps, values, label=f"{run.name}: {term}", lw=1)
        if "valid_loss" in run.valid:  # the validation set's total loss, beside the training total
            ax_loss.plot(*run.valid["valid_loss"], "k--", marker="o", ms=3, label=f"{run.name}: validation loss")
        for ax, (key, _, _) in zip(ax_valid, VALID_KEYS):
            if key in run.valid:
                ax.plot(*run.valid[key], marker="o", label=run.name)
            if f"{key}_noisy" in run.valid:
                ax.plot(*run.valid[f"{key}_noisy"], ls="--", color="gray", label=f"{run.name}: noisy input")
    ax_loss.set(xlabel="step", ylabel="training loss", yscale="log", title="training losses")
    for ax, (_, title, unit) in zip(ax_valid, VALID_KEYS):
        ax.set(xlabel="step", ylabel=unit, title=title)
    for ax in axes[0]:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, path)


@dataclass(frozen=True)
class GroupedScores:
    """Mean scores of each system per group of files (input SNR or noise category).

    Args:
        by: what the groups are ("snr_db", "category", or "noisy si_sdr" when estimated).
        groups: group labels in plotting order.
        means: metric -> system -> one mean per group (None where no file of that group scored).
        files: files per group.
    """

    by: str
    groups: list[str]
    means: dict[str, dict[str, list[float | None]]]
    files: list[int]


def group_scores(out_dir: str | Path, metrics: Sequence[str] | None = None) -> list[GroupedScores]:
    """Groups the scores of an `evaluate` folder by the set's categories and input SNRs.

    The groups come from a pairs.csv beside or inside the set's noisy folder (columns `file` and
    `category` and/or `snr_db`); without one, the noisy input's SI-SDR in SNR_BIN_DB bins stands for
    the input SNR.

    Args:
        out_dir: the `--out` folder of `evaluate` (scores.csv, run.json).
        metrics: metric columns to group; None = PLOT_METRICS that were scored, else the first four.

    Returns:
        One GroupedScores per grouping: by category first when the set has one, then by SNR.

    Raises:
        ConfigError: no scores in out_dir, or neither a pairs.csv nor noisy SI-SDR scores to group by.
    """
    out_dir = Path(out_dir)
    csv_path = out_dir / results.CSV_NAME
    if not csv_path.is_file():
        raise ConfigError(f"{csv_path}: no such file (is {out_dir} the --out folder of `dfn4 evaluate`?)")
    with csv_path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header, rows = list(reader.fieldnames or []), [r for r in reader if r["status"] != "failed"]
    scored = [c for c in header if c not in (*results.ROW_COLUMNS, results.NOTES_COLUMN)]
    metrics = list(metrics or [m for m in PLOT_METRICS if m in scored] or scored[:4])
    run_path = out_dir / results.RUN_NAME
    run = json.loads(run_path.read_text(encoding="utf-8")) if run_path.is_file() else {}
    meta = _metadata(Path(run["noisy_dir"])) if run.get("noisy_dir") else {}
    labels: list[tuple[str, dict[str, str]]] = []
    for by in ("category", "snr_db"):
        found = {k: m[by] for k, m in meta.items() if m.get(by, "") != ""}
        if found:
            labels.append((by, found))
    if not any(by == "snr_db" for by, _ in labels):
        noisy = {r["key"]: float(r["si_sdr"]) for r in rows if r["system"] == "noisy" and r.get("si_sdr", "") != ""}
        if noisy:
            labels.append(("noisy si_sdr", {k: f"{round(v / SNR_BIN_DB) * SNR_BIN_DB:g}" for k, v in noisy.items()}))
    if not labels:
        raise ConfigError(
            f"{out_dir}: nothing to group the scores by: no {METADATA_NAME} with category or snr_db columns "
            "beside the set's noisy folder, and no si_sdr of the noisy input (add si_sdr to --metrics)"
        )
    return [_grouped(by, group_of, rows, metrics) for by, group_of in labels]


def _metadata(noisy_dir: Path) -> dict[str, dict[str, str]]:
    """pairs.csv rows by file stem, from the noisy folder or the folder above it ({} if none)."""
    for path in (noisy_dir / METADATA_NAME, noisy_dir.parent / METADATA_NAME):
        if path.is_file():
            with path.open(newline="", encoding="utf-8") as f:
                return {Path(r["file"]).stem: r for r in csv.DictReader(f) if r.get("file")}
    return {}


def _grouped(by: str, group_of: dict[str, str], rows: list[dict[str, str]], metrics: list[str]) -> GroupedScores:
    groups = sorted(set(group_of.values()), key=_number_first)
    systems = list(dict.fromkeys(r["system"] for r in rows))
    means: dict[str, dict[str, list[float | None]]] = {}
    for m in metrics:
        means[m] = {}
        for s in systems:
            values: dict[str, list[float]] = {g: [] for g in groups}
            for r in rows:
                if r["system"] == s and r["key"] in group_of and r.get(m, "") != "":
                    values[group_of[r["key"]]].append(float(r[m]))
            means[m][s] = [results.mean_ci(values[g])["mean"] for g in groups]
    files = [sum(1 for g2 in group_of.values() if g2 == g) for g in groups]
    return GroupedScores(by, groups, means, files)


def _number_first(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label)


def plot_scores(out_dir: str | Path, path: str | Path, metrics: Sequence[str] | None = None) -> Path:
    """Mean scores of each system (one line each) per noise category and per input SNR: one row of
    panels per grouping, one panel per metric.

    Raises:
        ConfigError: matplotlib is missing, or see group_scores.
    """
    grouped = group_scores(out_dir, metrics)
    plt = pyplot()
    n_metrics = len(grouped[0].means)
    fig, axes = plt.subplots(len(grouped), n_metrics, figsize=(4 * n_metrics, 3.4 * len(grouped)), squeeze=False)
    for row, g in zip(axes, grouped):
        x = list(range(len(g.groups)))
        for ax, (metric, systems) in zip(row, g.means.items()):
            for system, means in systems.items():
                ax.plot(x, [float("nan") if v is None else v for v in means], marker="o", label=system)
            ax.set_xticks(x, g.groups, rotation=30 if g.by == "category" else 0, fontsize=8)
            xlabel = {"snr_db": "input SNR (dB)", "noisy si_sdr": "input SI-SDR (dB, noisy file)"}.get(g.by, g.by)
            ax.set(xlabel=xlabel, title=metric)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    return save_figure(fig, path)

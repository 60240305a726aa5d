"""Per-file result rows: the append-only, resumable CSV, and their summary (means, 95 % CIs, counts);
the names of the files an evaluate folder holds.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Iterable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from dfn4core.errors import ConfigError

logger = logging.getLogger(__name__)

# Columns before the metrics; `trimmed_samples` counts samples at 16 kHz cut to match lengths.
ROW_COLUMNS = ("system", "key", "status", "reference", "estimate", "sr_reference", "sr_estimate", "trimmed_samples")
NOTES_COLUMN = "notes"
CSV_NAME = "scores.csv"  # the rows, in an evaluate folder
RUN_NAME = "run.json"  # what the rows are results of: set, noisy folder, model checksum, enhanced folder
CONFIDENCE = 0.95
METRIC_PACKAGES = ("pesq", "pystoi", "speechmos", "onnxruntime", "soxr", "numpy", "scipy", "torch")


def columns(metrics: Sequence[str]) -> list[str]:
    """CSV header for these metrics."""
    return [*ROW_COLUMNS, *metrics, NOTES_COLUMN]


def read_rows(csv_path: Path, header: Sequence[str]) -> list[dict[str, str]]:
    """The finished rows of a results CSV, repairing a last line cut short by an interrupted run.

    Raises:
        ConfigError: the file was written with other columns (other metrics).
    """
    if not csv_path.exists():
        return []
    data = csv_path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if complete != data:
        logger.warning("%s: dropping an unfinished last line from an interrupted run", csv_path)
        csv_path.write_bytes(complete)
    if not complete:
        return []
    with csv_path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != list(header):
            raise ConfigError(
                f"{csv_path} holds results for other metrics ({', '.join(reader.fieldnames or [])}); "
                "use another --out folder or the same --metrics"
            )
        return list(reader)


def write_rows(csv_path: Path, header: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    """Writes a whole results CSV: the header, then `rows`."""
    writer = RowWriter(csv_path, header, fresh=True)
    try:
        writer.write(rows)
    finally:
        writer.close()


class RowWriter:
    """Appends rows to the results CSV, each flushed at once so none is lost if the run stops."""

    def __init__(self, csv_path: Path, header: Sequence[str], fresh: bool = False):
        self.header = list(header)
        fresh = fresh or not csv_path.exists() or csv_path.stat().st_size == 0
        self._file = csv_path.open("w" if fresh else "a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, self.header, extrasaction="ignore")
        if fresh:
            self._writer.writeheader()
            self._file.flush()

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self._writer.writerow({k: _cell(row.get(k)) for k in self.header})
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


def mean_ci(values: Sequence[float]) -> dict[str, float | int | None]:
    """Mean, sample standard deviation and half-width of the 95 % Student-t confidence interval."""
    n = len(values)
    if n == 0:
        return {"mean": None, "ci95": None, "std": None, "count": 0}
    mean = math.fsum(values) / n
    if n == 1:
        return {"mean": mean, "ci95": None, "std": None, "count": 1}
    from scipy.special import stdtrit  # Student t quantile; scipy.stats takes a second to import

    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stdtrit(n - 1, 0.5 + CONFIDENCE / 2)) * std / math.sqrt(n)
    return {"mean": mean, "ci95": half, "std": std, "count": n}


def summarise(rows: Sequence[dict[str, str]], systems: Sequence[str], metrics: Sequence[str]) -> dict[str, Any]:
    """Per system: metric statistics, the delta of each mean to the noisy input's, and file counts.

    Args:
        rows: CSV rows (strings; an empty metric cell is a missing value).
        systems: systems to report, "noisy" first.
        metrics: metric columns.

    Returns:
        {system: {"metrics": {metric: {mean, ci95, std, count, missing, delta}}, "files",
        "ok", "partial", "failed", "trimmed", "rate_mismatch", "problems": [{key, status, notes}]}}.
    """
    out: dict[str, Any] = {}
    for system in systems:
        own = [r for r in rows if r["system"] == system]
        stats = {}
        for m in metrics:
            values = [float(r[m]) for r in own if r[m] != ""]
            stats[m] = {**mean_ci(values), "missing": len(own) - len(values)}
        out[system] = {
            "metrics": stats,
            "files": len(own),
            **{s: sum(r["status"] == s for r in own) for s in ("ok", "partial", "failed")},
            "trimmed": sum(int(r["trimmed_samples"] or 0) > 0 for r in own),
            "rate_mismatch": sum(r["sr_reference"] not in ("", r["sr_estimate"]) for r in own),
            "problems": [
                {"key": r["key"], "status": r["status"], "notes": r[NOTES_COLUMN]} for r in own if r["status"] != "ok"
            ],
        }
    noisy = out.get("noisy", {}).get("metrics", {})
    for system, summary in out.items():
        for m, s in summary["metrics"].items():
            base = noisy.get(m, {}).get("mean")
            s["delta"] = None if system == "noisy" or base is None or s["mean"] is None else s["mean"] - base
    return out


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages the scores depend on (None if absent)."""
    found: dict[str, str | None] = {}
    for name in METRIC_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found

"""The PNG of a `dfn4 benchmark` report (the `plot` extra: matplotlib, through `dfn4core.plot`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dfn4core.plot import pyplot, save_figure


def plot_benchmark(report: dict[str, Any], path: str | Path) -> Path:
    """A PNG with two bar charts: offline RTF and median per-hop step time (p99 as error bar) per
    model, backend and thread count.

    Raises:
        ConfigError: matplotlib (the `plot` extra) is not installed.
    """
    plt = pyplot()
    results = report["results"]
    labels = [f"{r['name']}\n{r['backend']}, {r['threads']}t" for r in results]
    x = np.arange(len(results))
    fig, (ax_rtf, ax_hop) = plt.subplots(1, 2, figsize=(max(6, 1.6 * len(results)), 4))
    ax_rtf.bar(x, [r["offline"]["rtf"] for r in results])
    ax_rtf.set(title="offline real-time factor", ylabel="RTF (lower is faster)")
    median = [r["streaming"]["median_ms"] for r in results]
    p99 = [r["streaming"]["p99_ms"] - m for r, m in zip(results, median)]
    ax_hop.bar(x, median, yerr=[[0] * len(x), p99], capsize=4)
    ax_hop.set(title="per 10 ms hop (median, p99)", ylabel="ms")
    for ax in (ax_rtf, ax_hop):
        ax.set_xticks(x, labels, fontsize=8)
    machine = report["machine"]
    fig.suptitle(f"{machine['cpu']}, torch {machine['torch']}, {machine['date_utc']}", fontsize=9)
    return save_figure(fig, path, dpi=120)

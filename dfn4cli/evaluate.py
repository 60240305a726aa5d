"""`dfn4 evaluate`: PESQ, STOI, SI-SDR, composite and DNSMOS of a set, its noisy input beside a model's output."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from dfn4cli._options import Device, DeviceOpt, EvalModelOpt, resolve_device


class SetName(str, Enum):
    voicebank = "voicebank"
    dns = "dns"
    pairs = "pairs"
    blind = "blind"


SET_HELP = "voicebank|dns: --data-dir; pairs: --noisy-dir, --clean-dir; blind: --noisy-dir (DNSMOS only)."
SetOpt = Annotated[SetName, typer.Option("--set", help=SET_HELP)]
DirOpt = Annotated[Optional[Path], typer.Option(exists=True, file_okay=False, help="See --set.")]
# Not checked here: a missing voicebank folder gets the library's message on where the set is published.
DataDirOpt = Annotated[Optional[Path], typer.Option(file_okay=False, help="See --set.")]
EnhancedOpt = Annotated[Optional[Path], typer.Option(exists=True, file_okay=False, help="Another system's outputs.")]
JobsOpt = Annotated[int, typer.Option(min=1, help="Worker processes.")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", file_okay=False, help="Results folder; a rerun resumes.")]
MAX_REASONS = 10  # failed rows listed per system; all of them are in scores.csv
PlotOpt = Annotated[
    Optional[Path],
    typer.Option("--plot", dir_okay=False, help="Also draw the scores per input SNR (and noise category) "
                 "as this PNG (needs: pip install 'dfn4\\[plot]')."),
]  # fmt: skip
MetricsOpt = Annotated[
    Optional[str], typer.Option(show_default="all the set allows", help="Comma-separated, e.g. pesq,stoi,composite,dnsmos.")
]


def evaluate(
    set_name: SetOpt,
    data_dir: DataDirOpt = None,
    noisy_dir: DirOpt = None,
    clean_dir: DirOpt = None,
    model: EvalModelOpt = None,
    enhanced_dir: EnhancedOpt = None,
    jobs: JobsOpt = 1,
    out: OutOpt = Path("evaluation"),
    metrics: MetricsOpt = None,
    device: DeviceOpt = Device.auto,
    plot: PlotOpt = None,
) -> None:
    """Score the noisy files of a set, and a model's (--model) or another system's (--enhanced-dir) outputs."""
    from dfn4core.evaluate import evaluate as run
    from dfn4core.metrics.sets import load_set
    from dfn4core.plot import plot_scores, require_matplotlib

    if plot is not None:
        require_matplotlib()  # before scoring, not after
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    eval_set = load_set(set_name.value, data_dir=data_dir, noisy_dir=noisy_dir, clean_dir=clean_dir)
    for u in eval_set.unmatched:
        err.print(f"[yellow]unmatched:[/] {escape(str(u.path))}: {escape(u.reason)}")
    columns = (TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err) as progress:
        bar = progress.add_task("scoring", total=len(eval_set.items))
        report = run(
            eval_set, out, model=model, enhanced_dir=enhanced_dir, metrics=metrics, jobs=jobs,
            device=resolve_device(device) if model else None,
            on_progress=lambda done, total: progress.update(bar, completed=done, total=total),
        )  # fmt: skip
    Console(soft_wrap=True).print(summary_table(report.summary))
    for u in report.summary["enhanced_unmatched"]:
        err.print(f"[yellow]unmatched:[/] {escape(u['path'])}: {escape(u['reason'])}")
    done = f"{report.scored} files scored, {report.resumed} already done"
    err.print(f"{done}; wrote {report.csv_path} and {report.json_path}")
    if plot is not None:
        err.print(f"wrote {escape(str(plot_scores(out, plot)))}")
    failed = {name: s["failed"] for name, s in report.summary["systems"].items() if s["failed"]}
    for name, system in report.summary["systems"].items():
        reasons = [p for p in system["problems"] if p["status"] == "failed"]
        for p in reasons[:MAX_REASONS]:
            err.print(f"[yellow]failed:[/] {name} {escape(p['key'])}: {escape(p['notes'])}")
        if len(reasons) > MAX_REASONS:
            err.print(f"[yellow]failed:[/] {name}: {len(reasons) - MAX_REASONS} more in {report.csv_path}")
    if failed:
        err.print(f"[bold red]error:[/] files that could not be scored (see {report.csv_path}): {failed}")
        raise typer.Exit(1)


def summary_table(summary: dict[str, Any]) -> Table:
    """Rows = metrics, columns = systems (fits 80 columns): mean ± 95 % CI, and below it the change
    from the noisy input; the CSV and JSON hold the full figures."""
    table = Table(title=f"dfn4 evaluate: {summary['set']['name']} ({summary['set']['files']} files)")
    table.add_column("metric")
    systems = summary["systems"]
    for name in systems:
        table.add_column(escape(name), justify="right", no_wrap=True)
    for m in summary["metrics"]:
        cells = []
        for system in systems.values():
            s = system["metrics"][m]
            ci = "" if s["ci95"] is None else f" ±{s['ci95']:.2f}"
            delta = "" if s["delta"] is None else f"\n[{'green' if s['delta'] >= 0 else 'red'}]{s['delta']:+.2f}[/]"
            cells.append("-" if s["mean"] is None else f"{s['mean']:.2f}{ci}{delta}")
        table.add_row(m, *cells)
    table.caption = "mean ±95 % CI; below: change from noisy"
    return table

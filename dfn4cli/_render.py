"""Rich rendering shared by commands: a progress bar per file with its real-time factor, and a summary."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

if TYPE_CHECKING:
    from dfn4core.io import AudioInfo
    from dfn4core.files import FileFailure, FileResult, FileSkipped


OUTPUT_MIN_WIDTH = 40  # the enhance table's output column keeps up to this many characters on one line


class FileProgress:
    """Progress bars for a batch of files; hand its methods to enhance_files as callbacks."""

    def __init__(self, console: Console):
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("RTF {task.fields[rtf]}"),
            TimeRemainingColumn(),
            console=console,
        )
        self._task: TaskID | None = None
        self._start, self._sr = 0.0, 1

    def __enter__(self) -> FileProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def on_file_start(self, path: Path, info: AudioInfo) -> None:
        self._task = self.progress.add_task(escape(str(path)), total=info.frames, rtf="-")
        self._start, self._sr = time.perf_counter(), info.sr

    def on_progress(self, done: int, total: int) -> None:
        if self._task is not None and done > 0:
            rtf = (time.perf_counter() - self._start) / (done / self._sr)
            self.progress.update(self._task, completed=done, total=total, rtf=f"{rtf:.3f}")

    def on_file_end(self, result: FileResult | FileFailure | FileSkipped) -> None:
        if self._task is not None and result.status == "failed":
            self.progress.update(self._task, description=f"[red]{escape(str(result.in_path))} (failed)")
        self._task = None


class StageProgress:
    """A spinner naming the stage under way, each finished stage left as a line with its time; hand
    `stage` (and `steps`) to the library as on_stage (and on_progress)."""

    def __init__(self, console: Console, title: str):
        self.console, self.title = console, title
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        # The spinner only on a terminal (elsewhere it leaves a blank line); the stage lines always stay.
        self.progress = Progress(*columns, console=console, transient=True, disable=not console.is_terminal)
        self._task: TaskID | None = None
        self._name, self._start = "", 0.0

    def __enter__(self) -> StageProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            self._finish()
        elif self._task is not None:  # the error says what failed; no half-done stage line
            self.progress.remove_task(self._task)
        self.progress.stop()

    def stage(self, name: str) -> None:
        self._finish()
        self._name, self._start = name, time.perf_counter()
        self._task = self.progress.add_task(f"{self.title}: {escape(name)}")

    def steps(self, done: int, total: int) -> None:
        if self._task is not None:
            self.progress.update(self._task, description=f"{self.title}: {escape(self._name)} {done}/{total}")

    def _finish(self) -> None:
        if self._task is not None:
            self.progress.remove_task(self._task)
            self.console.print(f"{self.title}: {escape(self._name)} ({time.perf_counter() - self._start:.1f} s)")
            self._task = None


def summary_table(results: Sequence[FileResult | FileFailure | FileSkipped], out_dir: Path) -> Table:
    """One row per file: input, output (under out_dir), duration, real-time factor, status.

    The status is ok, failed, or skipped (the output exists and was kept). Long paths wrap rather
    than being cut, so two files never look alike.
    """
    outputs = [str(r.out_path.relative_to(out_dir) if r.out_path.is_relative_to(out_dir) else r.out_path) for r in results]
    table = Table(title="dfn4 enhance", caption=f"outputs under {escape(str(out_dir))}")
    table.add_column("file", overflow="fold")
    table.add_column("output", overflow="fold", min_width=min(OUTPUT_MIN_WIDTH, max(map(len, outputs), default=0)))
    for name in ("duration", "RTF"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for r, out in zip(results, outputs, strict=True):
        if r.status == "failed":
            table.add_row(escape(str(r.in_path)), escape(out), "-", "-", "[red]failed")
        elif r.status == "skipped":
            table.add_row(escape(str(r.in_path)), escape(out), "-", "-", "[yellow]skipped[/] (exists)")
        else:
            table.add_row(escape(str(r.in_path)), escape(out), f"{r.duration_s:.2f} s", f"{r.rtf:.3f}", "[green]ok")
    return table


class TrainDisplay:
    """A progress bar for training: step, losses, steps/s and ETA; hand `update` to train()."""

    def __init__(self, console: Console, enabled: bool = True):
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("train"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            console=console,
            disable=not enabled,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> TrainDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def update(self, p: Any) -> None:
        if self._task is None:
            self._task = self.progress.add_task("train", total=p.total, completed=p.step - 1, info="")
        info = f"loss {p.terms.get('total', float('nan')):.4g}  {p.steps_per_s:.2f} step/s  lr {p.lr:.2e}"
        if p.skipped:
            info += f"  skipped {p.skipped}"
        if p.valid is not None:
            self.progress.console.print(
                f"step {p.step}: valid loss {p.valid['valid_loss']:.4g}, SI-SDR {p.valid['si_sdr']:.2f} dB "
                f"(noisy {p.valid['si_sdr_noisy']:.2f}), PESQ {p.valid.get('pesq', float('nan')):.2f} "
                f"(noisy {p.valid.get('pesq_noisy', float('nan')):.2f})"
            )
        self.progress.update(self._task, completed=p.step, info=info)


def benchmark_table(report: dict[str, Any]) -> Table:
    """One column per measurement (model, backend, threads), one row per figure."""
    m = report["machine"]
    table = Table(title=f"dfn4 benchmark: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, {m['date_utc']}")
    table.add_column("")
    for r in report["results"]:
        table.add_column(escape(f"{r['name']} {r['backend']} {r['threads']}t"), justify="right")
    rows = [
        ("parameters (M)", lambda r: f"{r['params']['total'] / 1e6:.3f}"),
        ("GMAC/s network [1]", lambda r: f"{r['macs_per_s']['network'] / 1e9:.4f}"),
        ("GMAC/s incl. STFT as DFT matmuls", lambda r: f"{r['macs_per_s']['total_with_dft'] / 1e9:.4f}"),
        ("offline RTF (median)", lambda r: f"{r['offline']['rtf']:.4f}"),
        ("step ms per 10 ms hop: median", lambda r: f"{r['streaming']['median_ms']:.3f}"),
        ("  p90", lambda r: f"{r['streaming']['p90_ms']:.3f}"),
        ("  p99", lambda r: f"{r['streaming']['p99_ms']:.3f}"),
        *([("  DFN3's runtime, same loop [2]", lambda r: f"{r['streaming']['reference']['median_ms']:.3f}"),
           ("  median / DFN3's runtime", lambda r: f"{r['streaming']['x_dfn3']:.2f}x")] if "dfn3" in report else []),
        ("peak RSS during enhance (MiB)", lambda r: f"{r['memory']['peak_mib']:.0f}"),
        ("  growth over baseline (MiB)", lambda r: f"{r['memory']['growth_mib']:.1f}"),
        ("algorithmic latency (ms)", lambda r: f"{r['latency']['ms']:.0f}"),
    ]
    for label, fmt in rows:
        table.add_row(label, *[fmt(r) for r in report["results"]])
    table.caption = "[1] FlopCounterMode (flops / 2) + analytic selective-scan and deep-filter terms, without the STFT"
    if "dfn3" in report:
        block = report["settings"].get("block", 1)
        turns = "one of its hops after each of the model's" if block == 1 else f"{block} of its hops after each {block} of the model's"
        table.caption += (f"\n[2] DeepFilterNet3's official runtime ({report['dfn3']['runtime']}), median ms per hop: "
                          f"{turns}, in the same loop")  # fmt: skip
    return table

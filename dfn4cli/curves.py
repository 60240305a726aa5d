"""`dfn4 curves`: training losses and validation scores of `dfn4 train` runs, from their metrics.jsonl, as a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape


def curves(
    runs: Annotated[
        list[Path],
        typer.Argument(
            exists=True, file_okay=False, metavar="RUN_DIR", help="Run folders of `dfn4 train` (with metrics.jsonl)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", dir_okay=False, help="The PNG to write.")],
) -> None:
    """Plot training loss terms and validation SI-SDR/PESQ of runs (needs: pip install 'dfn4\\[plot]')."""
    from dfn4core.plot import plot_training

    path = plot_training(runs, out)
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"wrote {escape(str(path))}")

"""`dfn4 distill`: a frozen teacher (a shipped model or a checkpoint) teaches a student on the training data, as `dfn4 train` runs."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from dfn4cli._options import RunOptions, run_options
from dfn4cli.train import run_and_report


@run_options
def distill(
    options: RunOptions,
    teacher: Annotated[str, typer.Option("--teacher", help="Trained teacher: a shipped model (full) or a checkpoint.")],
    variant: Annotated[
        Optional[str], typer.Option(help="Student variant: full | lite | tiny (overrides the config).", show_default="lite")
    ] = None,
) -> None:
    """Distil a teacher into a (smaller) student: output spectra, ERB gains, deep filter and embeddings, plus the task losses."""
    from dfn4core.train.distill import distill as run_distillation

    variant = variant or (None if options.resume else "lite")  # a resumed run keeps its own

    def run(cfg, data_cfg, run_dir, **kwargs):
        return run_distillation(cfg, data_cfg, run_dir, teacher, **kwargs)

    run_and_report(run, options, options.overrides(variant),
                   resume_command=f"dfn4 distill --teacher {teacher} --out {options.out} --resume")  # fmt: skip

"""The `dfn4` Typer app: global options, logging set-up, and library errors as one red line.

Commands import dfn4core (and torch) inside their bodies, so `dfn4 --help` stays fast.
"""

from __future__ import annotations

import logging
import signal
import threading
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from typer.core import TyperGroup

from dfn4cli import benchmark, curves, distill, enhance, evaluate, export, quantize, train

LOGGERS = ("dfn4core", "dfn4cli")
# Global flags that may also follow the command (`dfn4 enhance --debug ...`).
GLOBAL_FLAGS = ("--debug", "--no-debug", "--version")
INTERRUPTED_EXIT = 130  # the shell's code for a run ended by Ctrl-C (SIGTERM ends the same way)


class _Dfn4Group(TyperGroup):
    """Accepts the global flags after the command too, turns a Dfn4Error raised by any command into
    `error: ...` and exit code 1, and an interruption (Ctrl-C, SIGTERM) into exit code 130."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        end = args.index("--") if "--" in args else len(args)  # after `--` every word is an argument
        flags = [a for a in args[:end] if a in GLOBAL_FLAGS]
        rest = [a for a in args[:end] if a not in GLOBAL_FLAGS]
        return super().parse_args(ctx, [*flags, *rest, *args[end:]])

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            # Raised by Ctrl-C or by _terminate: `with`/`finally` blocks have removed unfinished outputs.
            Console(stderr=True).print("[bold red]interrupted[/]", highlight=False)
            raise typer.Exit(INTERRUPTED_EXIT) from None
        except Exception as err:
            from dfn4core.errors import Dfn4Error

            if not isinstance(err, Dfn4Error):
                raise
            console = Console(stderr=True)
            if ctx.params.get("debug"):
                console.print_exception()
            console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_Dfn4Group,
    name="dfn4",
    help="DeepFilterNet4: real-time full-band (48 kHz) speech enhancement.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.command("enhance", no_args_is_help=True)(enhance.enhance)
app.command("evaluate", no_args_is_help=True)(evaluate.evaluate)
app.command("export", no_args_is_help=True)(export.export)
app.command("quantize", no_args_is_help=True)(quantize.quantize)
app.command("train", no_args_is_help=True)(train.train)
app.command("distill", no_args_is_help=True)(distill.distill)
app.command("benchmark")(benchmark.benchmark)
app.command("curves", no_args_is_help=True)(curves.curves)


def _version() -> str:
    try:
        return version("dfn4")
    except PackageNotFoundError:  # a source checkout: ask the library itself
        from dfn4core import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"dfn4 {_version()}")
        raise typer.Exit()


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM (kill, a job scheduler) cleans up exactly as Ctrl-C does


def setup_logging(debug: bool) -> None:
    """Logs dfn4 messages to stderr through Rich: WARNING by default, DEBUG with --debug."""
    handler = RichHandler(console=Console(stderr=True), show_time=False, show_path=debug, markup=False)
    handler.set_name("dfn4cli")
    for name in LOGGERS:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() == "dfn4cli"]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if debug else logging.WARNING)


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug/--no-debug", help="Debug logging and full tracebacks.")] = False,
    show_version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """DeepFilterNet4: real-time full-band (48 kHz) speech enhancement."""
    setup_logging(debug)
    if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
        signal.signal(signal.SIGTERM, _terminate)

"""The `dfn4` command-line interface: a thin Typer layer over dfn4core."""

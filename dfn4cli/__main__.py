"""Lets `python -m dfn4cli` run the `dfn4` command."""

from dfn4cli.main import app

app(prog_name="dfn4")

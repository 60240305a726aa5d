"""`dfn4 curves`: a PNG of training runs' curves, or a one-line error."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from dfn4cli.main import app
from test_plot import PNG_MAGIC, write_run

runner = CliRunner()


def test_curves_of_two_runs_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    runs = [str(write_run(tmp_path / "full")), str(write_run(tmp_path / "lite", valid=False))]
    result = runner.invoke(app, ["curves", *runs, "-o", str(tmp_path / "c.png")])
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == f"wrote {tmp_path / 'c.png'}" and (tmp_path / "c.png").read_bytes()[:8] == PNG_MAGIC


def test_a_folder_that_is_not_a_run_is_one_line(tmp_path):
    result = runner.invoke(app, ["curves", str(tmp_path), "-o", str(tmp_path / "c.png")])
    assert result.exit_code == 1 and "a `dfn4 train` run folder" in result.stderr


def test_without_matplotlib_the_extra_is_named(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = runner.invoke(app, ["curves", str(write_run(tmp_path / "run")), "-o", str(tmp_path / "c.png")])
    assert result.exit_code == 1 and result.stderr.strip() == "error: the plot needs matplotlib: pip install 'dfn4[plot]'"

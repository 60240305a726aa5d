"""The `dfn4` app itself: shell completion, global flags after the command, and what --help shows."""

from __future__ import annotations

import pytest
import typer
from typer.core import TyperOption
from typer.testing import CliRunner

import dfn4core
from dfn4cli.main import app
from dfn4core.errors import CheckpointError

runner = CliRunner()
COMMANDS = typer.main.get_command(app).commands
# Options that may be left out and then do nothing (no default to show): optional input folders and
# optional output files, and Typer's own completion options.
NO_DEFAULT = {
    ("evaluate", "data_dir"), ("evaluate", "noisy_dir"), ("evaluate", "clean_dir"), ("evaluate", "enhanced_dir"),
    ("evaluate", "plot"), ("benchmark", "json_out"), ("benchmark", "plot"),
}  # fmt: skip


def complete(words: str) -> list[str]:
    """What the shell completion script offers for the last word of `words`."""
    env = {"_DFN4_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)}
    result = runner.invoke(app, [], env=env, prog_name="dfn4")
    assert result.exit_code == 0, result.output
    return result.output.split()


def test_completion_is_offered_and_completes_commands_and_options(monkeypatch):
    top = runner.invoke(app, ["--help"])
    assert "--install-completion" in top.output and "--show-completion" in top.output
    assert complete("dfn4 enh") == ["enhance"]
    assert complete("dfn4 enhance --atten") == ["--atten-lim-db"]
    # --show-completion takes no value: Typer finds the shell among the parent processes, which
    # a test run from a non-shell parent (a scheduler, a background job) does not have.
    monkeypatch.setattr("typer.completion._get_shell_name", lambda: "bash")
    script = runner.invoke(app, ["--show-completion"], prog_name="dfn4")
    assert script.exit_code == 0 and "_DFN4_COMPLETE=complete_bash" in script.output


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_is_accepted_before_and_after_the_command(tmp_path, monkeypatch, where):
    (tmp_path / "a.wav").touch()

    def broken(path, device=None, dfn3=False):
        raise CheckpointError(path, "not a dfn4 checkpoint")

    monkeypatch.setattr(dfn4core, "load_model", broken)
    args = ["enhance", str(tmp_path / "a.wav"), "-o", str(tmp_path / "out"), "--model", "x.pt", "--device", "cpu"]
    args = ["--debug", *args] if where == "before" else [*args[:1], "--debug", *args[1:]]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "Traceback" in result.stderr and "not a dfn4 checkpoint" in result.stderr


def test_version_after_the_command():
    result = runner.invoke(app, ["enhance", "--version"])
    assert result.exit_code == 0 and result.output.startswith("dfn4 ")


def test_a_word_after_double_dash_is_an_argument_not_a_flag(tmp_path):
    result = runner.invoke(app, ["enhance", "-o", str(tmp_path), "--", "--debug"])
    assert result.exit_code == 2 and "'--debug' does not exist" in result.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_shows_every_default(name):
    command = COMMANDS[name]
    ctx = typer.Context(command, info_name=name)
    options = [p for p in command.params if isinstance(p, TyperOption) and not p.required]
    missing = [p.name for p in options if (name, p.name) not in NO_DEFAULT and "[default: " not in p.get_help_record(ctx)[1]]
    assert missing == []


def test_benchmark_help_shows_the_plot_extra_intact():
    result = runner.invoke(app, ["benchmark", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "pip install 'dfn4[plot]'" in result.output


def test_export_help_describes_the_check_audio_default_without_a_checkout():
    result = runner.invoke(app, ["export", "--help"], env={"COLUMNS": "200"})
    assert "generated speech-like signal" in result.output

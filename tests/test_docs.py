"""Every command that README.md and docs/*.md show still parses, so a changed option fails here first.

`dfn4 ...` lines of code blocks are parsed by the real app with every option converted and checked
(choices, ranges, required options, paths made in a scratch folder), the command itself replaced by a
recorder; inline `dfn4 ...` spans, and lines that end in "...", have their option names checked;
`python SCRIPT.py --opt` lines need the script and each option in its source; every extra named
(`dfn4[plot]`) exists. .ci/run runs README's test command.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import typer
from typer.core import TyperArgument, TyperOption

from dfn4cli.main import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGUAGES = ("bash", "sh", "shell", "console", "")
PLACEHOLDERS = ("COMMAND",)  # `dfn4 COMMAND --help` stands for any command


def shell_blocks(text: str) -> list[str]:
    """The text of each fenced code block in a shell language (or none) of a markdown text."""
    blocks, language, lines = [], None, []
    for line in text.splitlines():
        fence = re.match(r"\s*```\s*(\S*)", line)
        if fence and language is None:
            language, lines = fence.group(1), []
        elif fence:
            if language in SHELL_LANGUAGES:
                blocks.append("\n".join(lines))
            language = None
        elif language is not None:
            lines.append(line)
    return blocks


def _shown(pattern: str) -> list[tuple[str, str]]:
    """(doc name, command line) for each line of a shell code block in the docs matching `pattern`."""
    found = []
    for doc in DOCS:
        for block in shell_blocks(doc.read_text(encoding="utf-8")):
            for line in re.sub(r"\\\n\s*", " ", block).splitlines():
                for part in line.split("&&"):
                    if re.search(pattern, part):
                        found.append((doc.name, part.strip()))
    return found


def _words(line: str) -> list[str]:
    """The dfn4 arguments of a shown command: after `dfn4` (or `-m dfn4cli`), comments dropped,
    optional [--opt X] included, shell variables as plain words."""
    words = shlex.split(line.replace("$", ""), comments=True)
    start = max(i for i, w in enumerate(words) if w == "dfn4" or (w == "dfn4cli" and words[i - 1] == "-m"))
    return [w.strip("[]") for w in words[start + 1 :] if w.strip("[]")]


def _spans() -> list[tuple[str, str]]:
    """(doc name, span) for each inline `dfn4 ...` code span outside code blocks."""
    found = []
    for doc in DOCS:
        prose = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)
        for span in re.findall(r"`(dfn4 [^`]*)`", prose):
            found.append((doc.name, re.sub(r"\n\s*>?\s*", " ", span)))
    return found


BLOCK_COMMANDS = _shown(r"^\s*dfn4 |-m dfn4cli ")
SPANS = _spans()
SCRIPTS = _shown(r"python \S+\.py")


def _check_option_names(words: list[str]) -> None:
    """Every --option named before the subcommand is global, and every one after it is the command's."""
    group = typer.main.get_command(app)
    command = None
    names = _option_names(group)
    for word in words:
        if word in PLACEHOLDERS or word == "...":
            return
        if word.startswith("-"):
            assert word.split("=")[0] in names, f"unknown option {word!r}"
        elif command is None:
            assert word in group.commands, f"unknown command {word!r}"
            command = group.commands[word]
            names = _option_names(command) | {"--debug", "--no-debug"}  # global flags may follow the command


def _option_names(command: typer.core.TyperCommand) -> set[str]:
    return {n for p in command.params if isinstance(p, TyperOption) for n in (*p.opts, *p.secondary_opts)} | {"--help"}


def _make_paths(command: typer.core.TyperCommand, words: list[str]) -> None:
    """Creates (in the current folder) each path that an exists=True parameter is given."""
    takes_value = {n: p for p in command.params if isinstance(p, TyperOption) and not p.is_flag for n in (*p.opts, *p.secondary_opts)}
    [argument] = [p for p in command.params if isinstance(p, TyperArgument)] or [None]
    i, given = 0, []
    while i < len(words):
        if words[i] in takes_value:
            given.append((takes_value[words[i]], words[i + 1]))
            i += 2
        else:
            if not words[i].startswith("-") and argument is not None:
                given.append((argument, words[i]))
            i += 1
    for param, value in given:
        info = param.type_descriptor.parameter_info
        if not getattr(info, "exists", False):
            continue
        path = Path(value)
        if not info.file_okay or (info.dir_okay and (value.endswith("/") or not path.suffix)):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()


@pytest.mark.parametrize(("doc", "line"), BLOCK_COMMANDS, ids=[f"{d}:{c[:60]}" for d, c in BLOCK_COMMANDS])
def test_command_in_a_code_block_parses(doc, line, tmp_path, monkeypatch):
    words = _words(line)
    if "..." in words:  # an elided command: its option names are all there is to check
        _check_option_names(words)
        return
    group = typer.main.get_command(app)
    name = next(w for w in words if not w.startswith("-"))
    command = group.commands[name]
    calls = []
    command.callback = lambda **kwargs: calls.append(kwargs)
    monkeypatch.chdir(tmp_path)
    _make_paths(command, words[words.index(name) + 1 :])
    group.main(words, prog_name="dfn4", standalone_mode=False)
    assert len(calls) == 1


@pytest.mark.parametrize(("doc", "span"), SPANS, ids=[f"{d}:{s[:60]}" for d, s in SPANS])
def test_inline_command_names_real_options(doc, span):
    _check_option_names(_words(span))


@pytest.mark.parametrize(("doc", "line"), SCRIPTS, ids=[f"{d}:{c[:60]}" for d, c in SCRIPTS])
def test_script_in_a_code_block_exists_with_its_options(doc, line):
    words = shlex.split(line.replace("$", ""), comments=True)
    script = ROOT / next(w for w in words if w.endswith(".py"))
    source = script.read_text(encoding="utf-8")
    for option in (w.split("=")[0] for w in words if w.startswith("--")):
        assert f'"{option}"' in source, f"{script.name} has no option {option}"


def test_the_checks_see_the_commands():
    shown = {_words(line)[0] for _, line in BLOCK_COMMANDS}
    assert {"enhance", "evaluate", "export", "quantize", "train", "benchmark"} <= shown and len(SPANS) > 20


def test_a_changed_option_fails_the_check(tmp_path, monkeypatch):
    with pytest.raises(AssertionError, match="unknown option '--atten-lim'"):
        _check_option_names(["enhance", "--atten-lim", "12"])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Exception, match="No such option"):
        typer.main.get_command(app).main(["enhance", ".", "-o", "out", "--atten-lim", "12"], standalone_mode=False)


def test_every_extra_the_docs_name_exists():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    named = {e for doc in DOCS for e in re.findall(r"(?:dfn4|\.)\[([a-z0-9_-]+)\]", doc.read_text(encoding="utf-8"))}
    assert named >= {"plot", "test"} and named <= set(extras)


def test_ci_runs_readmes_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Run the tests") :]
    command = shell_blocks(section)[0]
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    ci_lines = [line for line in ci_lines if line and not line.startswith("#")]
    steps = [part.strip() for part in command.strip().split("&&")]
    ran = []
    for step in steps:
        pip_args = step.removeprefix("pip install ")
        matches = [i for i, line in enumerate(ci_lines) if line == step or (step.startswith("pip install ")
                   and line.startswith("python -m pip install") and line.endswith(" " + pip_args))]  # fmt: skip
        assert matches, f".ci/run does not run README's {step!r}"
        ran.append(matches[0])
    assert ran == sorted(ran), ".ci/run runs README's steps in another order"

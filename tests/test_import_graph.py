"""dfn4core's imports go one way: every module sits in a layer and imports only from its own layer or
those below it, and no module imports itself through others. docs/architecture.md draws the layers.

Every `import` counts, those inside functions too: a lazy import still makes the two modules one unit.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "dfn4core"

# Bottom to top; a module belongs to the layer of its longest matching prefix.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("dfn4core.errors", "dfn4core.atomic", "dfn4core.config", "dfn4core.state")),
    ("signal", ("dfn4core.dsp", "dfn4core.io", "dfn4core.synth")),
    ("model", ("dfn4core.model", "dfn4core.pretrained")),
    ("inference", ("dfn4core.streaming", "dfn4core.plan", "dfn4core.metrics")),
    ("deployment", ("dfn4core.export",)),
    ("training data and losses", ("dfn4core.data", "dfn4core.losses")),
    ("training", ("dfn4core.train",)),
    ("measurement", ("dfn4core.benchmark", "dfn4core.plot")),
    ("workflows", ("dfn4core", "dfn4core.export.torch_int8", "dfn4core.files", "dfn4core.evaluate")),
]
FORBIDDEN = ("typer", "rich", "dfn4cli")  # the library never imports its CLI or the CLI's libraries


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def layer_of(module: str) -> int:
    matches = [(len(prefix), i) for i, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]  # fmt: skip
    assert matches, f"{module} is in no layer: add it to LAYERS (and to docs/architecture.md)"
    return max(matches)[1]


def imports_of(module: str) -> set[str]:
    """The modules `module` imports, dfn4core's resolved to modules, others by top-level name."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            # `from pkg import sub` imports the submodule pkg.sub when there is one
            found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names)
    return {name if name in MODULES or not name.startswith("dfn4core") else _owner(name) for name in found}


def _owner(name: str) -> str:
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


GRAPH = {m: {i for i in imports_of(m) if i in MODULES and i != m} for m in MODULES}


def test_every_module_is_in_a_layer():
    for module in MODULES:
        layer_of(module)


def test_imports_go_down_or_sideways_never_up():
    upward = [f"{m} ({LAYERS[layer_of(m)][0]}) imports {i} ({LAYERS[layer_of(i)][0]})"
              for m, deps in GRAPH.items() for i in sorted(deps) if layer_of(i) > layer_of(m)]  # fmt: skip
    assert upward == []


def test_no_import_cycles():
    cycles = [c for c in _strongly_connected(GRAPH) if len(c) > 1]
    assert cycles == []


@pytest.mark.parametrize("name", FORBIDDEN)
def test_the_library_never_imports_the_cli_side(name):
    assert [m for m in MODULES if any(i.split(".")[0] == name for i in imports_of(m))] == []


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the strongly connected components of `graph`, each sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checker_sees_a_cycle_and_an_upward_edge():
    assert _strongly_connected({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"], ["c"]]
    assert layer_of("dfn4core.model.dfnet4") < layer_of("dfn4core.train.loop")
    assert layer_of("dfn4core.export.torch_int8") > layer_of("dfn4core.benchmark.report") > layer_of("dfn4core.export.onnx")

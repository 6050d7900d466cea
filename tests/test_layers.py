"""The import graph of src/imgclf reads top-down: no module imports, at any depth and inside any
function, a module that imports it back (CONTRIBUTING.md lists the layers)."""
import ast
from pathlib import Path

import imgclf

SRC = Path(imgclf.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for p in SRC.rglob("*.py"):
        parts = ["imgclf", *p.relative_to(SRC).with_suffix("").parts]
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def _imports(name: str, path: Path, modules: dict) -> set[str]:
    """The imgclf modules `name` imports (package re-exports of its own children left out)."""
    pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(pkg[: len(pkg) - node.level + 1] + [node.module or ""]).strip(".") if node.level \
                else node.module or ""
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for t in targets:
            while t not in modules and "." in t:
                t = t.rsplit(".", 1)[0]
            if t in modules and t != name and not t.startswith(name + "."):
                found.add(t)
    return found


def _cycle(graph: dict[str, set[str]]):
    """One import cycle as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(v):
        state[v] = 1
        stack.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                return stack[stack.index(w):] + [w]
            if w not in state and (c := visit(w)):
                return c
        stack.pop()
        state[v] = 2
        return None

    for v in sorted(graph):
        if v not in state and (c := visit(v)):
            return c
    return None


def test_the_import_graph_has_no_circle():
    modules = _modules()
    graph = {m: _imports(m, p, modules) for m, p in modules.items()}
    assert len(graph) > 80 and graph["imgclf.api"] >= {"imgclf.inference.restore", "imgclf.inference.export"}  # the graph was read
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


# CONTRIBUTING.md's layers, top to bottom: a module imports only modules of its own layer or below.
# A module belongs to the longest prefix that names it.
LAYERS = [
    ["imgclf", "imgclf.__main__", "imgclf.cli"],
    ["imgclf.api"],
    ["imgclf.studies"],
    ["imgclf.estimate", "imgclf.reporting", "imgclf.inspection"],
    ["imgclf.sweeps"],
    ["imgclf.inference"],
    ["imgclf.run"],
    ["imgclf.config.load", "imgclf.config.rules", "imgclf.config.resume"],
    ["imgclf.engine"],
    ["imgclf.evaluation"],
    ["imgclf.models", "imgclf.data"],
    ["imgclf.runtime"],
    ["imgclf.config", "imgclf.config.fields"],
    ["imgclf.core", "imgclf.config.schema"],
]


def _layer(module: str) -> int:
    found = [(len(p), i) for i, layer in enumerate(LAYERS) for p in layer if module == p or module.startswith(p + ".")]
    return max(found)[1]


def test_lower_layers_never_import_upper_ones():
    modules = _modules()
    graph = {m: _imports(m, p, modules) for m, p in modules.items()}
    bad = [f"{m} imports {d}" for m, deps in graph.items() for d in deps if _layer(d) < _layer(m)]
    assert not bad, bad


def test_the_package_root_holds_only_its_entry_points():
    assert sorted(p.name for p in SRC.glob("*.py")) == ["__init__.py", "__main__.py", "api.py"]


def test_the_config_schema_imports_nothing_of_the_package():
    modules = _modules()
    assert _imports("imgclf.config.schema", modules["imgclf.config.schema"], modules) == set()


def test_the_layer_rule_catches_an_upward_import():
    # a larger index is a lower layer: the schema lies under the engine, the rules over it
    assert _layer("imgclf.config.schema") > _layer("imgclf.engine.trainer") > _layer("imgclf.config.rules")
    assert _layer("imgclf.run.train") < _layer("imgclf.config.load") and _layer("imgclf") == 0

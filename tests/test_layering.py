"""The dependency arrows of README's Layout, read from the source with ``ast``.

``spec`` imports nothing of ours; ``reference``, ``conformance`` and ``bench`` import only
``spec`` and the leaf package ``redisproc`` (which imports nothing of ours); inside each
package no module imports itself back through others. Every import counts, at module level,
inside a function, or under ``TYPE_CHECKING``: a type-only import is still a dependency a
reader has to hold in mind.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
OURS = ("spec", "reference", "conformance", "bench", "redisproc", "tests")
ALLOWED: dict[str, set[str]] = {
    "spec": set(),
    "redisproc": set(),
    "reference": {"spec", "redisproc"},
    "conformance": {"spec", "redisproc"},
    "bench": {"spec", "redisproc"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module of ours that ``path`` imports, as an absolute dotted name."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # ``from . import x`` names a submodule (then that is the dependency) or a
            # value of the package.
            subs = {f"{target}.{alias.name}" for alias in node.names}
            known = {s for s in subs if _is_module(s)}
            found.update(known)
            if known != subs:
                found.add(target)
    return {m for m in found if m.split(".")[0] in OURS}


def _is_module(dotted: str) -> bool:
    base = REPO.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _modules(package: str) -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((REPO / package).rglob("*.py"))}


def _graph(package: str) -> dict[str, set[str]]:
    """Import edges between the modules of ``package``. Importing ``a.b.c`` first runs the
    package ``a.b``: that is an edge too, unless ``a.b`` holds the importer (then it is
    already running)."""
    modules = _modules(package)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = _imports(path)
        for target in list(targets):
            parts = target.split(".")
            targets.update(".".join(parts[:i]) for i in range(1, len(parts)))
        own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        graph[name] = targets & modules.keys() - own - {name}
    return graph


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package: str) -> None:
    wrong = {
        f"{name} imports {target}"
        for name, path in _modules(package).items()
        for target in _imports(path)
        if target.split(".")[0] not in ALLOWED[package] | {package}
    }
    assert not wrong, sorted(wrong)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in ``graph`` (a depth-first search's back edge), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_import_cycle_inside_a_package(package: str) -> None:
    cycle = _cycle(_graph(package))
    assert cycle is None, " -> ".join(cycle or [])


def test_the_layering_test_sees_imports() -> None:
    """Guard against a test that cannot fail: the graph really holds known arrows."""
    graph = _graph("reference")
    assert "reference.hub" in graph["reference.server.core"]
    assert "spec.connection" in _imports(REPO / "reference" / "session.py")
    assert "spec" not in {t.split(".")[0] for t in _imports(REPO / "redisproc" / "process.py")}

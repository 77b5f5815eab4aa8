"""The modules of ``caig`` import each other without a cycle, and the RM's core never imports its curriculum.

Every import counts: at module level, inside functions (a lazy import only hides a cycle until the function
runs) and under ``if TYPE_CHECKING``. Importing ``a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py`` too,
so a module also depends on the packages above what it imports.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
CURRICULUM = "caig.reward.curriculum"


def module_files() -> dict[str, Path]:
    """Every module of ``caig`` by dotted name (a package by its own name, from its ``__init__.py``)."""
    modules = {}
    for path in sorted((SRC / "caig").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported_names(name: str, path: Path) -> Iterator[str]:
    """Dotted names that the module ``name`` imports anywhere in its file: ``import a.b`` gives ``a.b``;
    ``from a import b`` gives ``a.b`` (``b`` may be a module or a name in ``a``); relative imports resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    """``module -> the caig modules it imports`` (and the packages above them, whose ``__init__`` runs)."""
    modules = module_files()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for dotted in imported_names(name, path):
            parts = dotted.split(".")
            # the longest prefix that is a module: ``from caig.x import y`` names module caig.x.y or a name of caig.x
            target = next(
                (".".join(parts[:n]) for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in modules),
                None,
            )
            if target is None:
                continue
            target_parts = target.split(".")
            for n in range(1, len(target_parts) + 1):
                dependency = ".".join(target_parts[:n])
                if dependency != name and not name.startswith(dependency + "."):
                    graph[name].add(dependency)  # a package's own __init__ above the importer is not a cycle
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted; none means no cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def one_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One import path around ``component``, from its first module back to it (for the failure message)."""
    members, start = set(component), component[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        node = frontier.pop(0)
        for successor in sorted(graph[node] & members):
            if successor == start:
                return [*paths[node], start]
            if successor not in paths:
                paths[successor] = [*paths[node], successor]
                frontier.append(successor)
    return component


def test_caig_has_no_import_cycle() -> None:
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles (lazy imports count):\n" + "\n".join(
        " -> ".join(one_cycle(graph, component)) for component in found
    )


def test_the_rm_core_never_imports_its_curriculum() -> None:
    graph = import_graph()
    core = [m for m in graph if m.startswith("caig.reward") and not m.startswith(CURRICULUM)]
    assert "caig.reward.trainer" in core and "caig.reward.scoring" in core
    offenders = {m: sorted(d for d in graph[m] if d.startswith(CURRICULUM)) for m in core}
    assert not {m: d for m, d in offenders.items() if d}, offenders


def test_the_checks_find_a_cycle_and_a_lazy_import(tmp_path, monkeypatch) -> None:
    """The walk sees imports inside functions and resolves ``from package import module``."""
    package = tmp_path / "caig"
    (package / "reward").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "reward" / "__init__.py").write_text("")
    (package / "reward" / "a.py").write_text("from caig.reward import b\n")
    (package / "reward" / "b.py").write_text("def f():\n    from .a import x\n")
    (package / "reward" / "c.py").write_text("import caig.reward.a\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path)
    graph = import_graph()
    assert graph["caig.reward.b"] == {"caig.reward.a"}  # its own packages ran before it: no edge to them
    assert graph["caig.reward.c"] == {"caig.reward.a"}
    assert cycles(graph) == [["caig.reward.a", "caig.reward.b"]]
    assert one_cycle(graph, ["caig.reward.a", "caig.reward.b"]) == [
        "caig.reward.a",
        "caig.reward.b",
        "caig.reward.a",
    ]

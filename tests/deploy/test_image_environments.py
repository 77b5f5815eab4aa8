"""Every container image's Python environment holds what its steps import, and every distribution an extra
names is imported by the project (or allowlisted with a reason). No Docker engine and no network:

- what an image installs is read from its Dockerfile (``pip install`` of pyproject extras and of packages
  named with ``==``), closed over ``Requires-Dist`` with the metadata installed in this venv, environment
  markers evaluated for the image's Python and ``extra`` set only for the extras being followed;
- what it imports is read with ``ast``: the body of each KFP component of ``components/*.py`` whose
  ``base_image`` is that image (plus KFP's executor, which runs them), or ``caig serve`` and
  ``caig.serving`` for caig-serve; ``caig.*`` imports are followed transitively, lazy imports in function
  bodies included, ``if TYPE_CHECKING:`` blocks excluded, and imports guarded by ``except ImportError``
  treated as optional.

A module is followed in one of two modes. *used*: it was imported by name, so any of its code may run and
all its imports count. *loaded*: it only runs at import time (a parent package of a used module, or what
such a package imports eagerly), so only its import-time imports count: module level, class bodies, and the
bodies of its own functions that it calls at module level (``caig.cli`` calls ``_register()``).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections import deque
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from tests.deploy.conftest import ROOT
from tests.deploy.test_images import dockerfile, instructions

from caig.orchestration.images import IMAGES

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# Code outside src/ is not in any image (.dockerignore): components/ reach an image only as the function
# source KFP embeds in the compiled pipeline, pipelines/ only as compiled YAML.
PROJECT_ROOTS = {
    "caig": ROOT / "src" / "caig",
    "components": ROOT / "components",
    "pipelines": ROOT / "pipelines",
}
COMPONENT_IMAGES = {"step_image": "caig-step", "train_image": "caig-train"}
KFP_EXECUTOR = "kfp.dsl.executor_main"  # what a lightweight component's container runs (python -m ...)
# The extras whose distributions must be imported somewhere; `dev` is tools (pytest, ruff) and test helpers.
RUNTIME_EXTRAS = ("train", "serve", "pipelines")

# Named in an extra, imported by no module of the project: each needs a reason.
NOT_IMPORTED = {
    "protobuf": "pinned to the range kfp, kfp-kubernetes, feast and kserve all accept (>=6.33.5,<7)",
}


# --------------------------------------------------------------------------------------------------------
# What an image installs


def requirements_of(extras: list[str] | set[str]) -> list[Requirement]:
    """The package's core dependencies plus those of ``extras``, as pyproject.toml declares them."""
    lines = list(PYPROJECT["dependencies"])
    for extra in sorted(extras):
        lines += PYPROJECT["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


def image_install(image: str) -> tuple[list[Requirement], str]:
    """The requirements an image's ``pip install`` lines name, and the Python version it runs."""
    path = dockerfile(image)
    requirements = []
    for instr, rest in instructions(path):
        if instr != "RUN" or "pip install" not in rest:
            continue
        for cmd in (c for c in rest.split("&&") if "pip install" in c):
            extras = re.search(r'"\.\[([a-z,]+)\]"', cmd)
            if extras:
                requirements += requirements_of(extras.group(1).split(","))
            for token in cmd.split():
                named = re.match(r'^"?([A-Za-z][\w.-]*(?:\[[\w,]+\])?)==', token)
                if named:
                    requirements.append(Requirement(named.group(1)))
    text = " ".join(rest for _, rest in instructions(path))  # comments dropped
    python = re.search(r"python:?(3\.\d+(?:\.\d+)?)", text)
    assert requirements and python, f"{path.name}: no pip install of the package or no Python version found"
    return requirements, python.group(1)


@cache
def installed(name: str) -> metadata.Distribution | None:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None


def closure(requirements: list[Requirement], python: str) -> tuple[set[str], set[str]]:
    """Canonical names of every distribution ``requirements`` bring (by installed ``Requires-Dist``), and the
    names that are required but not installed in this venv (so their own requirements are unknown)."""
    full = python if python.count(".") == 2 else f"{python}.0"
    env = default_environment() | {
        "python_version": ".".join(full.split(".")[:2]),
        "python_full_version": full,
    }
    followed: dict[str, set[str]] = {}  # distribution -> extras followed
    missing: set[str] = set()
    todo = [r for r in requirements if r.marker is None or r.marker.evaluate(env | {"extra": ""})]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        extras = {canonicalize_name(e) for e in req.extras}
        if name in followed and extras <= followed[name]:
            continue
        followed.setdefault(name, set()).update(extras)
        dist = installed(name)
        if dist is None:
            missing.add(name)
            continue
        for line in dist.requires or []:
            sub = Requirement(line)
            if sub.marker is None or any(
                sub.marker.evaluate(env | {"extra": e}) for e in {"", *followed[name]}
            ):
                todo.append(sub)
    return set(followed), missing


# --------------------------------------------------------------------------------------------------------
# What code imports


@dataclass(frozen=True)
class Imported:
    module: str  # absolute dotted name of the module an import statement names
    names: tuple[str, ...]  # the names of a `from module import ...` (empty for `import module`)
    lazy: bool  # runs only when a function is called, not at import time
    guarded: bool  # inside `try:` with an `except ImportError` (an optional import)


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(k, ast.Name) and k.id in ("ImportError", "ModuleNotFoundError") for k in kinds)


def parse_imports(body: list[ast.stmt], module: str, is_package: bool, lazy: bool = False) -> list[Imported]:
    """The imports of ``body`` (statements of ``module``), with relative ones made absolute."""
    defs = (ast.FunctionDef, ast.AsyncFunctionDef)
    # functions of this module that its import-time code calls (including as decorators)
    called_at_import = {
        node.func.id
        for stmt in body
        for part in ([*stmt.decorator_list] if isinstance(stmt, defs) else [stmt])
        for node in ast.walk(part)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    package = module if is_package else module.rpartition(".")[0]
    found: list[Imported] = []

    def visit(node: ast.AST, lazy: bool, guarded: bool, top: bool) -> None:
        if isinstance(node, ast.If) and _type_checking(node.test):
            for child in node.orelse:
                visit(child, lazy, guarded, top)
        elif isinstance(node, ast.Import):
            found.extend(Imported(a.name, (), lazy, guarded) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            name = ".".join([*base, *([node.module] if node.module else [])])
            found.append(Imported(name, tuple(a.name for a in node.names), lazy, guarded))
        elif isinstance(node, (*defs, ast.Lambda)):
            for child in [*getattr(node, "decorator_list", []), node.args]:
                visit(child, lazy, guarded, top)
            runs_now = top and getattr(node, "name", None) in called_at_import
            for child in node.body if isinstance(node.body, list) else [node.body]:
                visit(child, lazy or not runs_now, guarded, False)
        elif isinstance(node, ast.ClassDef):
            for child in ast.iter_child_nodes(node):
                visit(child, lazy, guarded, False)
        elif isinstance(node, (ast.Try, ast.TryStar)):
            optional = any(_catches_import_error(h) for h in node.handlers if h.type is not None)
            for child in node.body:
                visit(child, lazy, guarded or optional, top)
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(child, lazy, guarded, top)
        else:
            for child in ast.iter_child_nodes(node):
                visit(child, lazy, guarded, top)

    for stmt in body:
        visit(stmt, lazy, False, True)
    return found


@cache
def project_modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the package and of the checkout's components/ and pipelines/."""
    modules = {}
    for top, directory in PROJECT_ROOTS.items():
        for path in sorted(directory.rglob("*.py")):
            parts = [top, *path.relative_to(directory).with_suffix("").parts]
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


@cache
def module_imports(module: str) -> tuple[Imported, ...]:
    path = project_modules()[module]
    return tuple(parse_imports(ast.parse(path.read_text()).body, module, path.name == "__init__.py"))


@cache
def _distribution_modules(name: str) -> frozenset[str]:
    """Dotted names of the modules and packages a distribution's files hold."""
    names = set()
    for file in installed(name).files or []:
        parts = list(file.parts)
        if not parts or not re.search(r"\.(py|so|pyd)$", parts[-1]):
            continue
        parts[-1] = parts[-1].split(".")[0]
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return frozenset(names)


@cache
def _top_level_owners() -> dict[str, list[str]]:
    return metadata.packages_distributions()


@cache
def distributions_of(module: str) -> tuple[str, ...]:
    """Canonical names of the installed distributions that provide ``module`` (a namespace such as ``kfp``
    is shared by several: the one owning the longest prefix of the dotted name wins)."""
    owners = sorted({canonicalize_name(d) for d in _top_level_owners().get(module.split(".")[0], [])})
    if len(owners) > 1:
        parts = module.split(".")
        for i in range(len(parts), 0, -1):
            hits = [d for d in owners if ".".join(parts[:i]) in _distribution_modules(d)]
            if hits:
                return tuple(hits)
    return tuple(owners)


@dataclass(frozen=True)
class Root:
    label: str  # where the chain starts, e.g. components/reward.py::train_rm
    imports: tuple[Imported, ...]  # what it imports
    how: str = "used"  # "loaded": only the import-time code of what it imports runs


@cache
def components() -> dict[str, str | None]:
    """``components/<file>.py::<function>`` -> the image its ``dsl.component(base_image=...)`` names."""
    result = {}
    for path in sorted((ROOT / "components").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            for deco in getattr(node, "decorator_list", []):
                if isinstance(deco, ast.Call) and ast.unparse(deco.func) in ("dsl.component", "component"):
                    base = next((k.value for k in deco.keywords if k.arg == "base_image"), None)
                    call = ast.unparse(base.func) if isinstance(base, ast.Call) else None
                    result[f"components/{path.name}::{node.name}"] = COMPONENT_IMAGES.get(call)
    return result


def component_root(label: str) -> Root:
    file, _, name = label.partition("::")
    tree = ast.parse((ROOT / file).read_text())
    func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    module = "components." + Path(file).stem
    return Root(label, tuple(parse_imports(func.body, module, False)))


def image_roots(image: str) -> list[Root]:
    """Where the code an image runs starts."""
    if image == "caig-serve":
        serving = sorted(m for m in project_modules() if m.split(".")[:2] == ["caig", "serving"])
        return [
            Root("console script caig = caig.cli:main", (Imported("caig.cli", (), False, False),), "loaded"),
            *(Root("caig serve", (Imported(m, (), True, False),)) for m in ["caig.cli.serve", *serving]),
        ]
    labels = [label for label, img in components().items() if img == image]
    executor = Root(f"KFP executor of {len(labels)} components", (Imported(KFP_EXECUTOR, (), True, False),))
    return [executor, *(component_root(label) for label in labels)]


@dataclass(frozen=True)
class Need:
    distributions: tuple[str, ...]  # any of these provides the module ((): none installed provides it)
    module: str  # the third-party module imported
    chain: tuple[str, ...]  # root label, caig modules, ..., the module


def image_needs(roots: list[Root]) -> tuple[list[Need], list[tuple[str, ...]]]:
    """The third-party imports reached from ``roots`` (the first, shortest chain of each module), and the
    chains that reach a project module outside the package (not in any image)."""
    modules = project_modules()
    mode: dict[str, str] = {}  # module -> "loaded" | "used"
    queue: deque[tuple[str, str, tuple[str, ...]]] = deque()
    needs: dict[str, Need] = {}
    outside: list[tuple[str, ...]] = []

    def reach(module: str, how: str, chain: tuple[str, ...]) -> None:
        parts = module.split(".")
        for i in range(1, len(parts)):  # importing a.b.c runs a and a.b first
            reach(".".join(parts[:i]), "loaded", chain)
        if mode.get(module) == "used" or mode.get(module) == how:
            return
        mode[module] = how
        queue.append((module, how, (*chain, module)))

    def follow(imports: tuple[Imported, ...], how: str, chain: tuple[str, ...]) -> None:
        for imp in imports:
            if how == "loaded" and imp.lazy:
                continue
            top = imp.module.split(".")[0]
            if top in PROJECT_ROOTS:
                if top != "caig":
                    outside.append((*chain, imp.module))
                    continue
                subs = [f"{imp.module}.{n}" for n in imp.names if f"{imp.module}.{n}" in modules]
                assert imp.module in modules, f"{' -> '.join(chain)}: no module {imp.module}"
                reach(imp.module, "loaded" if imp.names and len(subs) == len(imp.names) else how, chain)
                for sub in subs:
                    reach(sub, how, chain)
            elif top not in sys.stdlib_module_names and not imp.guarded:
                for name in [f"{imp.module}.{n}" for n in imp.names] or [imp.module]:
                    if name not in needs:
                        needs[name] = Need(distributions_of(name), imp.module, (*chain, imp.module))

    for root in roots:
        follow(root.imports, root.how, (root.label,))
        while queue:
            module, how, chain = queue.popleft()
            follow(module_imports(module), how, chain)
    return list(needs.values()), outside


def missing_distributions(image: str, requirements: list[Requirement] | None = None) -> list[str]:
    """One line per distribution that ``image`` imports and its install lacks (``requirements`` override
    what its Dockerfile installs)."""
    install, python = image_install(image)
    have, _ = closure(requirements if requirements is not None else install, python)
    needs, outside = image_needs(image_roots(image))
    problems: dict[str, str] = {}
    for need in needs:
        if not need.distributions:
            problems.setdefault(f"<{need.module}>", f"no installed distribution provides {need.module}")
        elif not set(need.distributions) & have:
            dist = " or ".join(need.distributions)
            problems.setdefault(dist, f"{image} lacks {dist} ({need.module}): " + " -> ".join(need.chain))
    problems |= {
        f"<{c[-1]}>": f"{image} has no {c[-1]} (only src/ is copied): " + " -> ".join(c) for c in outside
    }
    return [problems[k] for k in sorted(problems)]


def project_imported_distributions() -> dict[str, str]:
    """Canonical distribution -> one project module importing it (lazy and optional imports included)."""
    found: dict[str, str] = {}
    for module in project_modules():
        for imp in module_imports(module):
            top = imp.module.split(".")[0]
            if top in PROJECT_ROOTS or top in sys.stdlib_module_names:
                continue
            for name in [f"{imp.module}.{n}" for n in imp.names] or [imp.module]:
                for dist in distributions_of(name):
                    found.setdefault(dist, module)
    return found


def unused_distributions(declared: list[Requirement]) -> list[str]:
    """The distributions ``declared`` names that no project module imports and NOT_IMPORTED does not explain."""
    imported = project_imported_distributions()
    names = {canonicalize_name(r.name) for r in declared}
    return sorted(names - set(imported) - set(NOT_IMPORTED))


# --------------------------------------------------------------------------------------------------------
# Tests


def test_every_component_runs_in_one_of_our_images():
    found = components()
    assert found, "no dsl.component found in components/*.py"
    unknown = sorted(label for label, image in found.items() if image is None)
    assert not unknown, f"base_image is neither step_image() nor train_image(): {unknown}"
    assert set(found.values()) == {"caig-step", "caig-train"}


@pytest.mark.parametrize("image", IMAGES)
def test_image_install_is_installed_here(image):
    """The closure is read from this venv's metadata, so every distribution it reaches must be installed."""
    install, python = image_install(image)
    _, missing = closure(install, python)
    assert not missing, (
        f"{image}: not installed in this venv, so its requirements are unknown: {sorted(missing)}"
    )


@pytest.mark.parametrize("image", IMAGES)
def test_image_provides_what_its_steps_import(image):
    problems = missing_distributions(image)
    assert not problems, "\n".join(problems)


def test_every_declared_distribution_is_imported():
    declared = [
        *requirements_of([]),
        *(
            Requirement(line)
            for extra in RUNTIME_EXTRAS
            for line in PYPROJECT["optional-dependencies"][extra]
        ),
    ]
    unused = unused_distributions(declared)
    imported = project_imported_distributions()
    assert not unused, (
        f"declared in pyproject.toml, imported nowhere (drop, or add to NOT_IMPORTED): {unused}"
    )
    names = {canonicalize_name(r.name) for r in declared}
    stale = {d: imported.get(d, "not declared") for d in NOT_IMPORTED if d in imported or d not in names}
    assert not stale, f"NOT_IMPORTED entries that are imported or no longer declared: {stale}"


# Self-checks: the checker can fail.


def test_checker_reports_a_missing_distribution():
    install, _ = image_install("caig-train")
    without = [r for r in install if canonicalize_name(r.name) != "scikit-learn"]
    problems = missing_distributions("caig-train", without)
    sklearn = [p for p in problems if "lacks scikit-learn" in p]
    # The chain names the caller and ends at the module imported (which caller comes first may change).
    assert sklearn and sklearn[0].startswith("caig-train") and sklearn[0].endswith("-> sklearn.metrics"), problems


def test_checker_reports_an_unused_distribution():
    assert unused_distributions([Requirement("numpy"), Requirement("trl==1.16.0")]) == ["trl"]


def test_parser_follows_lazy_imports_and_skips_type_checking():
    source = """
from typing import TYPE_CHECKING
import numpy
from . import sibling
if TYPE_CHECKING:
    import torch
try:
    import scipy
except ImportError:
    scipy = None
def later():
    import sklearn
def _register():
    from caig.cli import serve
_register()
"""
    found = {i.module: i for i in parse_imports(ast.parse(source).body, "caig.pkg.mod", False)}
    assert "torch" not in found
    assert found["caig.pkg"].names == ("sibling",) and not found["caig.pkg"].lazy
    assert found["sklearn"].lazy and not found["numpy"].lazy
    assert found["scipy"].guarded and not found["caig.cli"].lazy


def test_namespace_packages_resolve_to_their_distribution():
    assert distributions_of("kfp.kubernetes") == ("kfp-kubernetes",)
    assert distributions_of("kfp.dsl") == ("kfp",)
    assert distributions_of("sklearn.linear_model") == ("scikit-learn",)

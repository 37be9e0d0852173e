"""Every library the code imports is one pyproject.toml declares, not one that happens to be installed.

``make demo`` installs only ``[project.dependencies]``, ``make test`` adds the ``test`` extra; a
module that arrives only as a dependency of a dependency works until that dependency drops it. Each
module-level import is traced, through the installed distributions' file lists and without
importing anything, to the distribution that provides it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
OWN = {"config", "gateway", "plugins", "loadtests", "tests", "docs"}

SHIPPED = ["config", "gateway", "plugins", "loadtests/fakes", "loadtests/demo.py", "loadtests/processes.py"]
"""What ``make demo`` runs: the plain install must be enough for it."""
TESTED = ["loadtests", "tests"]
"""What ``make test`` and ``make bench`` run: the plain install plus the ``test`` extra."""


def distribution_name(requirement: str) -> str:
    return normalise(re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0])


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(*extras: str) -> set[str]:
    requirements = list(PROJECT["dependencies"])
    for extra in extras:
        requirements += PROJECT["optional-dependencies"][extra]
    return {distribution_name(requirement) for requirement in requirements}


def python_files(parts: list[str]) -> Iterator[Path]:
    for part in parts:
        path = ROOT / part
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def module_level_imports(path: Path) -> Iterator[str]:
    """Imports run when the module loads (lazy imports inside functions are optional extras);
    ``from a import b`` counts as ``a.b``, which may be a module of its own (``from opentelemetry
    import trace``: the package ``opentelemetry`` belongs to no one distribution)."""
    nodes = list(ast.parse(path.read_text(), str(path)).body)
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.If | ast.Try):
            nodes += [*node.body, *node.orelse, *getattr(node, "finalbody", [])]
            nodes += [statement for handler in getattr(node, "handlers", []) for statement in handler.body]


def owners() -> dict[str, str]:
    """Each installed module (``a.b`` for ``a/b.py``, ``a/b/__init__.py``, ``a/b.cpython-*.so``) and
    the distribution it belongs to."""
    found: dict[str, str] = {}
    for distribution in importlib.metadata.distributions():
        for file in distribution.files or []:
            if file.suffix not in {".py", ".so", ".pyd"} or ".." in file.parts:
                continue
            parts = [*file.parts[:-1], file.name.split(".", 1)[0]]
            if parts[-1] == "__init__":
                parts.pop()
            if parts:
                found[".".join(parts)] = normalise(distribution.metadata["Name"])
    return found


def owner(module: str, modules: dict[str, str]) -> str | None:
    """The distribution of ``module``, or of its nearest enclosing module that has one."""
    parts = module.split(".")
    while parts:
        found = modules.get(".".join(parts))
        if found is not None:
            return found
        parts.pop()
    return None


def third_party(parts: list[str]) -> dict[str, set[Path]]:
    """Third-party modules imported by the files under ``parts``, and where."""
    found: dict[str, set[Path]] = {}
    for path in python_files(parts):
        for module in module_level_imports(path):
            top = module.split(".")[0]
            if top in OWN or top in sys.stdlib_module_names or top == "__future__":
                continue
            found.setdefault(module, set()).add(path.relative_to(ROOT))
    return found


@pytest.mark.parametrize(
    ("parts", "extras"), [(SHIPPED, ()), (TESTED, ("test",))], ids=["make-demo", "make-test"]
)
def test_every_imported_library_is_declared(parts: list[str], extras: tuple[str, ...]) -> None:
    modules = owners()
    allowed = declared(*extras)
    undeclared: dict[str, str] = {}
    for module, where in third_party(parts).items():
        distribution = owner(module, modules)
        assert distribution is not None, f"{module} (imported by {sorted(map(str, where))}) is not installed"
        if distribution not in allowed:
            undeclared[module] = f"{distribution}, imported by {sorted(map(str, where))}"
    assert undeclared == {}, f"imported but not declared in pyproject.toml: {undeclared}"

"""The package's layers hold: the cores never import the Airflow-facing layers, and no two modules
import each other.

Read from the source with ``ast`` (nothing is imported). An import counts wherever it is, at
module level or inside a function; one under ``if TYPE_CHECKING:`` does not (it never runs).
Imports by name at run time (``importlib.import_module``, the backend registry) are not seen.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "airflow_trainkit"

# The layers that face Airflow or the user (operators and their kind, the demo, local runs, the
# command line, the provider metadata). Everything else is a core.
OUTER_PACKAGES = ("operators", "sensors", "triggers", "links", "local", "demo", "example_dags")
OUTER_MODULES = ("cli", "get_provider_info")
# What a core must not import: the outer layers (the top-level cli.py included; a core's own
# cli.py, such as registry/cli.py, is a core module that the top-level one loads).
FORBIDDEN = tuple(f"airflow_trainkit.{name}" for name in (*OUTER_PACKAGES, "cli"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def is_core(module: str) -> bool:
    parts = module.split(".")[1:]
    if not parts:
        return True
    return parts[0] not in OUTER_PACKAGES and not (len(parts) == 1 and parts[0] in OUTER_MODULES)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(source: str, module: str, *, is_package: bool = False) -> list[tuple[str, int]]:
    """Every ``(dotted name, line)`` the source imports at run time, wherever the import is.

    ``from a.b import c`` gives ``a.b.c`` (it may be a module) and ``a.b``; relative imports are
    resolved against ``module``.
    """
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for other in node.orelse:  # the else branch runs
                visit(other)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.append((base, node.lineno))
            found.extend((f"{base}.{alias.name}", node.lineno) for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return found


@cache
def imports_of(module: str) -> tuple[tuple[str, int], ...]:
    path = modules()[module]
    return tuple(imported_names(path.read_text(), module, is_package=path.name == "__init__.py"))


@cache
def graph() -> dict[str, frozenset[str]]:
    """Module -> the modules of the package it imports (the module itself, not its parents)."""
    known = modules()
    edges = {}
    for module in known:
        targets = {name for name, _ in imports_of(module) if name in known and name != module}
        # ``from a.b import c``: the edge is to ``a.b.c`` when that is a module, else to ``a.b``.
        targets -= {name.rpartition(".")[0] for name in targets if name.rpartition(".")[0] in targets}
        edges[module] = frozenset(targets)
    return edges


def cycle_through(start: str) -> list[str] | None:
    """A shortest import cycle from ``start`` back to it, or ``None``."""
    edges = graph()
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for module in frontier:
            for target in sorted(edges[module]):
                if target == start:
                    return [*paths[module], start]
                if target not in paths:
                    paths[target] = [*paths[module], target]
                    following.append(target)
        frontier = following
    return None


def outer_imports(module: str) -> list[str]:
    """What ``module`` imports from the outer layers, with the line."""
    return sorted(
        f"{name} (line {line})"
        for name, line in imports_of(module)
        if name in FORBIDDEN or name.startswith(tuple(f"{layer}." for layer in FORBIDDEN))
    )


def test_no_core_module_imports_an_outer_layer() -> None:
    cores = [name for name in modules() if is_core(name)]
    wrong = {name: outer_imports(name) for name in cores}
    assert not {name: found for name, found in wrong.items() if found}, "core modules import outer layers"


def test_no_import_cycle() -> None:
    cycles = [cycle_through(name) for name in modules()]
    assert not [" -> ".join(cycle) for cycle in cycles if cycle], "import cycles"


def test_the_reader_sees_function_level_imports_and_skips_type_checking_ones() -> None:
    source = """
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from airflow_trainkit.operators.registry import PromoteModelOperator
else:
    import airflow_trainkit.links.console
from . import gate

def rollback(name):
    from airflow_trainkit.operators.registry import rollback_champion
    return rollback_champion(name)
"""
    names = {name for name, _ in imported_names(source, "airflow_trainkit.registry.cli")}
    assert "airflow_trainkit.operators.registry.rollback_champion" in names
    assert "airflow_trainkit.operators.registry.PromoteModelOperator" not in names
    assert {"airflow_trainkit.links.console", "airflow_trainkit.registry.gate"} <= names


def test_the_layers_are_as_described() -> None:
    assert is_core("airflow_trainkit.registry.cli") and is_core("airflow_trainkit.hooks.mlflow")
    assert not is_core("airflow_trainkit.cli") and not is_core("airflow_trainkit.operators.registry")
    assert not is_core("airflow_trainkit.get_provider_info") and not is_core("airflow_trainkit.demo.data")
    assert graph()["airflow_trainkit.registry.promotion"] >= {"airflow_trainkit.registry.gate"}

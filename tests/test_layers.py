"""The layers of the package: the library never imports the application (`rtrrl.app`), and the
lower layers (cells, estimators, heads, traces) never import the upper ones; `rtrrl.testing`
builds on cells and estimators only."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "rtrrl"

# What each library layer may not import (its own or a higher layer's modules).
FORBIDDEN = {
    "cells": {"estimators", "heads", "agent", "algorithms", "training", "app", "online"},
    "estimators": {"heads", "agent", "algorithms", "training", "app", "online"},
    "heads": {"estimators", "agent", "algorithms", "training", "app", "online"},
    "traces.py": {"cells", "estimators", "heads", "agent", "algorithms", "training", "app"},
    "envs": {"cells", "estimators", "heads", "agent", "algorithms", "training", "app"},
    "agent": {"algorithms", "training", "app"},
    "algorithms": {"training", "app"},
    "training": {"app"},
    "online": {"app", "algorithms", "training"},
    # Users' test suites import it: it needs the cells and estimators only.
    "testing": {"heads", "agent", "algorithms", "training", "app", "online", "envs"},
}


def _eager_part(tree: ast.Module) -> ast.Module:
    """`tree` without its functions, classes and ``if TYPE_CHECKING:`` blocks: the imports
    that run when the module is imported."""

    def lazy(node: ast.stmt) -> bool:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            return True
        return isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")

    return ast.Module(body=[n for n in tree.body if not lazy(n)], type_ignores=[])


def _imported_top_modules(path: Path, *, eager_only: bool = False) -> set[str]:
    """The `rtrrl.<name>` modules a file imports (absolute or relative); with `eager_only`,
    only those imported when the file is (not inside functions or ``TYPE_CHECKING``)."""
    depth = len(path.relative_to(PACKAGE).parts) - 1  # folders below rtrrl/
    names = set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(_eager_part(tree) if eager_only else tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "rtrrl" and len(parts) > 1:
                    names.add(parts[1])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] == "rtrrl":
                    names |= {parts[1]} if len(parts) > 1 else {a.name for a in node.names}
            elif node.level - 1 == depth:  # relative to the package root
                if node.module:
                    names.add(node.module.split(".")[0])
                else:
                    names |= {a.name for a in node.names}
            elif node.level - 1 < depth:  # inside this file's own top-level folder
                names.add(path.relative_to(PACKAGE).parts[0])
    return names


def _files(layer: str) -> list[Path]:
    target = PACKAGE / layer
    return [target] if target.is_file() else sorted(target.rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(layer):
    assert _files(layer), f"rtrrl/{layer} is missing"
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(_imported_top_modules(path) & FORBIDDEN[layer])
        for path in _files(layer)
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_no_library_module_imports_the_application():
    library = [p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] != "app"]
    # `rtrrl/__main__.py` is the command line; `rtrrl/__init__.py`, the front door of both
    # layers, may hand `rtrrl.sweep` to the application inside the function (checked below).
    library = [p for p in library if p.parent != PACKAGE or p.name not in FRONT_DOOR]
    offenders = [str(p.relative_to(PACKAGE)) for p in library if "app" in _imported_top_modules(p)]
    assert offenders == []


FRONT_DOOR = ("__init__.py", "__main__.py")


def test_importing_rtrrl_does_not_load_the_application():
    """The package's `__init__` reaches `rtrrl.app` only lazily: by AST, and in a fresh
    interpreter, where ``import rtrrl`` leaves every ``rtrrl.app`` module unloaded."""
    assert "app" not in _imported_top_modules(PACKAGE / "__init__.py", eager_only=True)
    assert "app" in _imported_top_modules(PACKAGE / "__init__.py")  # the checker sees it
    code = "import sys, rtrrl; print([m for m in sys.modules if m.startswith('rtrrl.app')])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_checker_sees_imports():
    """The AST walk finds relative and absolute imports (so the tests above can fail)."""
    assert "app" in _imported_top_modules(PACKAGE / "__main__.py")
    assert {"cells", "estimators"} <= _imported_top_modules(PACKAGE / "app" / "registry.py")

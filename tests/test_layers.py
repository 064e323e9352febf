"""The layers of the package: the library never imports the application (`rtrrl.app`), and the
lower layers (cells, estimators, heads, traces) never import the upper ones; `rtrrl.testing`
builds on cells and estimators only."""

import ast
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


def _imported_top_modules(path: Path) -> set[str]:
    """The `rtrrl.<name>` modules a file imports (absolute or relative)."""
    depth = len(path.relative_to(PACKAGE).parts) - 1  # folders below rtrrl/
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
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
    library = [p for p in library if p.name != "__main__.py" or p.parent != PACKAGE]
    offenders = [str(p.relative_to(PACKAGE)) for p in library if "app" in _imported_top_modules(p)]
    assert offenders == []


def test_the_checker_sees_imports():
    """The AST walk finds relative and absolute imports (so the tests above can fail)."""
    assert "app" in _imported_top_modules(PACKAGE / "__main__.py")
    assert {"cells", "estimators"} <= _imported_top_modules(PACKAGE / "app" / "registry.py")

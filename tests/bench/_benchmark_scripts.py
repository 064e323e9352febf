"""Importing the scripts of ``benchmarks/`` in tests: they are scripts, not a package."""

import contextlib
import importlib
import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from _training_helpers import persistent_compilation_cache

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@contextlib.contextmanager
def benchmark_scripts(
    names: tuple[str, ...], cache_dir: Path | None = None
) -> Iterator[dict[str, ModuleType]]:
    """The scripts `names` as modules (``benchmarks/`` on ``sys.path`` meanwhile, so their
    own imports of each other work), with a persistent compilation cache in `cache_dir` if
    one is given."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        with contextlib.ExitStack() as stack:
            if cache_dir is not None:
                stack.enter_context(persistent_compilation_cache(cache_dir))
            yield {name: importlib.import_module(name) for name in names}
    finally:
        sys.path.remove(str(BENCHMARKS))


def load_script(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` loaded as a module of its own (not added to ``sys.path``)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def printed_report(stdout: str, returned: object, saved: Path) -> dict:
    """The one ``JSON: {...}`` line a benchmark printed, after asserting that it is the only
    one and equals both what the script returned (as JSON) and the file it saved."""
    json_lines = [line for line in stdout.splitlines() if line.startswith("JSON: ")]
    assert len(json_lines) == 1, stdout
    printed = json.loads(json_lines[0].removeprefix("JSON: "))
    assert printed == json.loads(json.dumps(returned))
    assert json.loads(saved.read_text()) == printed
    return printed

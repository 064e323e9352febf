"""Every ```python block of README.md and of each docs/**/*.md page runs.

The blocks of one page run in order in one fresh namespace, so each page is self-contained.
They run as a user runs them: in a separate Python process (float32, JAX's default dtype
promotion, no jaxtyping hook), on one XLA:CPU thread. They compile like the rest of the suite,
with most of XLA's optimisations off (`_fast_compile`): the pages' programs train for seconds,
so compiling fast wins (all pages: 38 s of CPU against 73 s with JAX's defaults, 2026-12-06);
their outputs are not compared with anything bit for bit. One process runs every page, each in
its own namespace, so JAX is imported once; each page is reported as its own test.

A block that is not meant to run is tagged ```bash or ```text, or, for Python that cannot run
here, preceded by the line ``<!-- skip-test -->`` (give the reason in that comment).
A page that trains agents for longer than this test's budget (under a minute for all fast
pages) starts with the line ``<!-- test: slow -->`` and runs under the `slow` marker.
"""

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SKIP = "<!-- skip-test"
SLOW = "<!-- test: slow"
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)[^\n]*$")


def python_blocks(text: str) -> list[tuple[int, str]]:
    """The ```python blocks of a Markdown text as (first line number, code), in order,
    without those that follow a ``<!-- skip-test -->`` line."""
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        indent, lang = match["indent"], match["lang"]
        start = i + 1
        j = start
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        previous = next((line for line in reversed(lines[:i]) if line.strip()), "")
        if lang == "python" and not previous.strip().startswith(SKIP):
            body = [
                line[len(indent) :] if line.startswith(indent) else line for line in lines[start:j]
            ]
            blocks.append((start + 1, "\n".join(body) + "\n"))
        i = j + 1
    return blocks


# JAX's persistent compilation cache, in a fresh folder, only lets pages that compile the same
# program (the README and index.md train the same small agent) share the compilation.
RUNNER = r"""
import json, sys, time, traceback
import jax
jax.config.update("jax_compilation_cache_dir", sys.argv[1])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
pages = json.load(sys.stdin)
results = {}
for name, blocks in pages.items():
    namespace = {"__name__": "__docs__"}
    started = time.perf_counter()
    error = None
    for line, code in blocks:
        try:
            exec(compile(code, f"{name}:{line}", "exec"), namespace)
        except BaseException:
            error = f"block at {name}:{line} failed:\n" + traceback.format_exc()
            break
    results[name] = {"error": error, "seconds": time.perf_counter() - started}
    print(f"{name}: {results[name]['seconds']:.1f} s", file=sys.stderr, flush=True)
print("@@RESULTS@@" + json.dumps(results))
"""


def _name(page: pathlib.Path) -> str:
    return page.relative_to(ROOT).as_posix()


def is_slow(page: pathlib.Path) -> bool:
    """A page whose first line is ``<!-- test: slow ... -->`` runs under the `slow` marker."""
    return page.read_text().startswith(SLOW)


def run_pages(pages: list[pathlib.Path], workdir: pathlib.Path) -> dict:
    """Run the pages' blocks in one fresh process; {page name: {"error", "seconds"}}."""
    blocks = {_name(page): python_blocks(page.read_text()) for page in pages}
    # The suite's compile settings (`_fast_compile`, already in this process's environment).
    env = {**os.environ, "PJRT_NPROC": "1", "MPLBACKEND": "Agg"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(workdir / "jax-cache")],
        input=json.dumps(blocks),
        capture_output=True,
        text=True,
        cwd=workdir,  # runs, plots and files land here
        env=env,
        timeout=900,
    )
    out = proc.stdout.rpartition("@@RESULTS@@")
    if proc.returncode != 0 or not out[1]:
        pytest.fail(f"the docs runner crashed (status {proc.returncode}):\n{proc.stderr[-5000:]}")
    return json.loads(out[2])


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Each group of pages (fast, slow) runs once, when its first test asks for it."""
    cache = {}

    def result(page: pathlib.Path) -> dict:
        slow = is_slow(page)
        if slow not in cache:
            group = [p for p in PAGES if is_slow(p) == slow]
            cache[slow] = run_pages(group, tmp_path_factory.mktemp("docs"))
        return cache[slow][_name(page)]

    return result


def test_fence_parser():
    text = "a\n```python\nx = 1\n```\n<!-- skip-test: needs a GPU -->\n```python\ny\n```\n"
    text += "  ```python\n  z = 2\n  ```\n```bash\nls\n```\n"
    assert python_blocks(text) == [(3, "x = 1\n"), (10, "z = 2\n")]


@pytest.mark.parametrize(
    "page",
    [pytest.param(p, id=_name(p), marks=[pytest.mark.slow] if is_slow(p) else []) for p in PAGES],
)
def test_page_code_runs(page, results):
    result = results(page)
    assert result["error"] is None, result["error"]

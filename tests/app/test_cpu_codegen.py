"""`rtrrl.app.cpu_codegen` (``--fast-cpu-codegen``): when the LLVM option is set, that XLA:CPU
honours it, and that ``rtrrl train`` passes it on."""

import json
import os
import re
from pathlib import Path

import pytest
from _training_helpers import TINY_FLAGS, run_python_code, subprocess_env

from rtrrl.app import cpu_codegen
from rtrrl.app.config import TrainConfig

FAST = TrainConfig(fast_cpu_codegen=True)


@pytest.fixture
def before_jax(monkeypatch):
    """As in a fresh process on a CPU-only machine: JAX not started, no XLA_FLAGS."""
    monkeypatch.setattr(cpu_codegen, "_jax_started", lambda: False)
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.delenv(cpu_codegen.FLAGS_VAR, raising=False)
    return monkeypatch


def test_off_by_default(before_jax):
    assert not TrainConfig().fast_cpu_codegen
    assert cpu_codegen.configure_cpu_codegen(TrainConfig()) == cpu_codegen.DEFAULT
    assert cpu_codegen.FLAGS_VAR not in os.environ


def test_the_option_is_added_to_xla_flags(before_jax):
    before_jax.setenv(cpu_codegen.FLAGS_VAR, "--xla_cpu_enable_fast_math=false")
    assert cpu_codegen.configure_cpu_codegen(FAST) == cpu_codegen.LLVM_OPTIONS
    assert os.environ[cpu_codegen.FLAGS_VAR] == (
        "--xla_cpu_enable_fast_math=false --xla_backend_extra_options=-unroll-full-max-count=4"
    )


def test_llvm_options_of_the_user_are_kept(before_jax):
    mine = "--xla_backend_extra_options=-unroll-full-max-count=8"
    before_jax.setenv(cpu_codegen.FLAGS_VAR, mine)
    assert cpu_codegen.configure_cpu_codegen(FAST).startswith("unchanged")
    assert os.environ[cpu_codegen.FLAGS_VAR] == mine


def test_an_accelerator_platform_is_left_alone(before_jax):
    before_jax.setenv("JAX_PLATFORMS", "cuda,cpu")
    assert cpu_codegen.configure_cpu_codegen(FAST) == (
        "unchanged (an accelerator platform may be used)"
    )
    assert cpu_codegen.FLAGS_VAR not in os.environ


def test_too_late_warns_and_changes_nothing(monkeypatch):
    monkeypatch.setattr(cpu_codegen, "_jax_started", lambda: True)
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.delenv(cpu_codegen.FLAGS_VAR, raising=False)
    with pytest.warns(UserWarning, match=r"--fast-cpu-codegen\) has no effect.*XLA_FLAGS="):
        chosen = cpu_codegen.configure_cpu_codegen(FAST)
    assert chosen == "unchanged (JAX had already started)"
    assert cpu_codegen.FLAGS_VAR not in os.environ


_COMPILE_TRACE_UPDATE = """
import sys
import jax, jax.numpy as jnp
from rtrrl.app.config import TrainConfig
from rtrrl.app.cpu_codegen import configure_cpu_codegen
print(configure_cpu_codegen(TrainConfig(fast_cpu_codegen=sys.argv[1] == "fast")))
e = jnp.zeros((64, 32, 32))
jax.jit(lambda e, g, s: 0.98 * e + s[:, None, None] * g).lower(e, e, jnp.zeros(64)).compile()
"""


def _compiled_kernels(tmp_path: Path, mode: str) -> tuple[str, list[str]]:
    dump = tmp_path / mode
    env = subprocess_env(None) | {cpu_codegen.FLAGS_VAR: f"--xla_dump_to={dump}"}
    env["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "0"  # LLVM vectorizes at its usual level only
    stdout = run_python_code(_COMPILE_TRACE_UPDATE, [mode], env=env, timeout=300)
    kernels = [
        path.read_text()
        for path in dump.glob("*fusion*ir-with-opt.ll")
        if "jit__lambda" in path.name
    ]
    assert kernels, sorted(p.name for p in dump.iterdir())
    return stdout.strip(), kernels


def test_xla_hands_the_option_to_llvm(tmp_path):
    """The eligibility-trace update ``0.98 e + s_b g`` over ``(64, 32, 32)`` compiles to vector
    instructions with the option. (LLVM's defaults left it scalar with the LLVM of jax 0.10.2;
    that half is not asserted, since a newer LLVM may vectorize it either way.) Floats are 32-
    or 64-bit, as the environment's ``JAX_ENABLE_X64`` says."""
    chosen, kernels = _compiled_kernels(tmp_path, "fast")
    assert chosen == cpu_codegen.LLVM_OPTIONS
    assert any(re.search(r"<\d+ x (float|double)>", kernel) for kernel in kernels)


_TRAIN_AND_PRINT_FLAGS = """
import os, sys
from rtrrl.app.cli import main

code = main(sys.argv[1:])
print("XLA_FLAGS:", os.environ.get("XLA_FLAGS", ""))
sys.exit(code)
"""


def _train_and_read_flags(tmp_path: Path, argv: list[str]) -> list[str]:
    env = subprocess_env(None)
    env.pop(cpu_codegen.FLAGS_VAR, None)
    stdout = run_python_code(_TRAIN_AND_PRINT_FLAGS, argv, env=env, cwd=tmp_path)
    return stdout.split("XLA_FLAGS:")[1].split()


def test_rtrrl_train_passes_it_on_and_a_resume_and_eval_keep_it(tmp_path):
    """``rtrrl train --fast-cpu-codegen`` sets the option in its process (before JAX starts)
    and saves the choice with the run's configuration; ``--resume`` of that run and
    ``rtrrl eval`` of it, each in a new process, set it again from the saved configuration."""
    out = tmp_path / "run"
    option = f"--xla_backend_extra_options={cpu_codegen.LLVM_OPTIONS}"
    argv = [*TINY_FLAGS, "--steps", "500", "--lr-decay", "none", "--out", str(out)]
    assert option in _train_and_read_flags(tmp_path, ["train", *argv, "--fast-cpu-codegen"])
    assert json.loads((out / "config.json").read_text())["fast_cpu_codegen"] is True
    resumed = _train_and_read_flags(tmp_path, ["train", "--resume", str(out), "--steps", "1000"])
    assert option in resumed
    assert option in _train_and_read_flags(tmp_path, ["eval", "--run", str(out), "--episodes", "2"])

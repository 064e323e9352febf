"""``RTRRL_RUNTIME_CHECKS=1``: the users' switch for jaxtyping + beartype checks.

The suite itself runs under pytest's ``--jaxtyping-packages`` hook, in float64 with strict
dtype promotion (conftest.py). A user's program has neither, so these tests run fresh Python
processes with the environment of this one (plus or minus the variable): float32, JAX's
default ("standard") promotion, and no pytest hook. There the checks come only from the
switch.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rtrrl import _runtime_checks

ROOT = Path(__file__).resolve().parents[1]

# The child imports rtrrl from this checkout (cwd first on sys.path), in float32 with JAX's
# default promotion whatever the parent process or the environment chose.
PRELUDE = textwrap.dedent(
    f"""
    import jax
    jax.config.update("jax_enable_x64", False)
    jax.config.update("jax_numpy_dtype_promotion", "standard")
    import jax.numpy as jnp
    import rtrrl
    assert rtrrl.__file__.startswith({str(ROOT)!r}), rtrrl.__file__
    """
)


def run_child(code: str, *, checks: bool) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop(_runtime_checks.ENV_VARIABLE, None)
    if checks:
        env[_runtime_checks.ENV_VARIABLE] = "1"
    return subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


WRONG_COTANGENT = """
    from rtrrl.cells import CTRNN
    from rtrrl.estimators import RFLO
    print("checks", rtrrl.runtime_checks_enabled())
    cell = CTRNN(3, 8, key=jax.random.key(0))
    rflo = RFLO()
    hidden, x = cell.init_hidden(), jnp.ones(3)
    hidden, state = rflo.step(cell, hidden, x, rflo.init(cell, hidden, x))
    try:
        rflo.gradient(cell, state, jnp.ones(8, jnp.int32))  # an int cotangent: wrongly typed
    except Exception as error:
        print("raised", type(error).__name__)
        print(error)
    else:
        print("no error")
"""


def test_checks_reject_a_wrongly_typed_cotangent():
    child = run_child(WRONG_COTANGENT, checks=True)
    assert child.returncode == 0, child.stderr
    assert "checks True" in child.stdout
    assert "raised TypeCheckError" in child.stdout, child.stdout
    assert "cotangent" in child.stdout  # beartype names the argument


def test_without_checks_a_wrongly_typed_cotangent_passes_silently():
    # The difference the switch makes: without it, JAX promotes the int32 cotangent and the
    # call returns a gradient; only with it does the annotation `Float[Array, " features"]`
    # stop the call.
    child = run_child(WRONG_COTANGENT, checks=False)
    assert child.returncode == 0, child.stderr
    assert "checks False" in child.stdout
    assert "no error" in child.stdout, child.stdout


FLOAT32_SUBSET = """
    import equinox as eqx
    import optax
    from rtrrl.cells import CTRNN, LRU
    from rtrrl.estimators import RFLO, RTRL, UORO, LocalMSE, SnAp1, TruncatedBPTT
    from rtrrl.online import delayed_copy

    assert rtrrl.runtime_checks_enabled()
    assert jnp.zeros(()).dtype == jnp.float32
    key = jax.random.key(0)
    cells = {"ctrnn": CTRNN(2, 6, key=key), "lru": LRU(2, 6, key=key)}
    estimators = [RTRL(), RFLO(), LocalMSE(), SnAp1(), UORO(), TruncatedBPTT(3)]
    xs = jax.random.normal(jax.random.key(1), (4, 2))
    steps = 0
    for name, cell in cells.items():
        for est in estimators:
            if name == "lru" and isinstance(est, RFLO):
                continue  # RFLO serves CTRNN cells only
            keys = iter(jax.random.split(jax.random.key(2), len(xs) + 1))
            kw = (lambda: {"key": next(keys)}) if est.stochastic else (lambda: {})
            hidden = cell.init_hidden()
            state = est.init(cell, hidden, xs[0], **kw())
            for x in xs:
                hidden, state = est.step(cell, hidden, x, state, **kw())
            cotangent = jnp.ones(cell.feature_size, jnp.float32)
            grads = est.gradient(cell, state, cotangent)
            assert all(leaf.dtype != jnp.float64 for leaf in jax.tree.leaves(grads))
            steps += 1
    print("estimators", steps)

    inputs, targets = delayed_copy(jax.random.key(3), 50, 2)
    fit = rtrrl.fit_sequence(CTRNN(1, 8, key=key), RFLO(), optax.adam(1e-2), inputs, targets)
    assert fit.losses.shape == (50,) and fit.losses.dtype == jnp.float32
    print("fit_sequence", float(fit.losses[-1]))

    env = rtrrl.envs.make("CartPole-vel")
    agent = rtrrl.RTRRL(
        cell=CTRNN(rtrrl.envs.meta_rl_input_size(env), 8, key=key), estimator=RFLO()
    )
    state = agent.init(jax.random.key(4), env)
    state, metrics = eqx.filter_jit(agent.step)(state, env, jax.random.key(6))  # checked while tracing
    print("rtrrl step ok")
"""


def test_float32_subset_runs_under_the_checks():
    child = run_child(FLOAT32_SUBSET, checks=True)
    assert child.returncode == 0, child.stderr[-4000:]
    assert "estimators 11" in child.stdout
    assert "fit_sequence" in child.stdout
    assert "rtrrl step ok" in child.stdout


def test_checks_without_beartype_say_how_to_install_it():
    # `sys.modules["beartype"] = None` makes `import beartype` fail as if it were missing.
    code = "import sys; sys.modules['beartype'] = None\n" + "import rtrrl\n"
    env = dict(os.environ, **{_runtime_checks.ENV_VARIABLE: "1"})
    child = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert child.returncode != 0
    assert "ImportError" in child.stderr
    assert "rtrrl[checks]" in child.stderr
    assert _runtime_checks.ENV_VARIABLE in child.stderr


@pytest.mark.parametrize(
    ("value", "on"),
    [("1", True), ("yes", True), ("true", True), ("0", False), ("", False), ("off", False)],
)
def test_which_values_switch_the_checks_on(monkeypatch, value, on):
    monkeypatch.setenv(_runtime_checks.ENV_VARIABLE, value)
    assert _runtime_checks.requested() is on

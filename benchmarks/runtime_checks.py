"""Cost of ``RTRRL_RUNTIME_CHECKS=1``: a small RTRRL step, jitted (`eqx.filter_jit`) and eager, with and without.

Each configuration runs in a fresh subprocess (the switch is read at ``import rtrrl``) and
reports, in seconds: the import of rtrrl, one trace of the step (`filter_make_jaxpr`, a
fresh trace: the step's jaxpr is not cached across the two), the first call of the jitted step (trace +
compile), the mean of later jitted calls, and the mean of eager (un-jitted) steps after a first one. Under
``jit`` the checks run only while tracing, so later calls cost the same.

    python benchmarks/runtime_checks.py
"""

import json
import os
import subprocess
import sys

CHILD = r"""
import json, time
t0 = time.perf_counter()
import equinox as eqx, jax
import rtrrl
from rtrrl.cells import CTRNN
from rtrrl.estimators import RFLO
t_import = time.perf_counter() - t0
env = rtrrl.envs.make("CartPole-vel")
alg = rtrrl.RTRRL(cell=CTRNN(rtrrl.envs.meta_rl_input_size(env), 32, key=jax.random.key(0)),
                  estimator=RFLO())
state = alg.init(jax.random.key(1), env)
keys = jax.random.split(jax.random.key(2), 201)
t0 = time.perf_counter()
eqx.filter_make_jaxpr(alg.step)(state, env, keys[0])  # tracing alone, where the checks run
t_trace = time.perf_counter() - t0
step = eqx.filter_jit(alg.step)
t0 = time.perf_counter()
state, _ = jax.block_until_ready(step(state, env, keys[0]))
t_first = time.perf_counter() - t0
t0 = time.perf_counter()
for k in keys[1:]:
    state, _ = step(state, env, k)
jax.block_until_ready(state)
t_jit = (time.perf_counter() - t0) / 200
state, _ = jax.block_until_ready(alg.step(state, env, keys[0]))  # compiles its ops once
t0 = time.perf_counter()
for k in keys[1:6]:
    state, _ = jax.block_until_ready(alg.step(state, env, k))
t_eager = (time.perf_counter() - t0) / 5
print(json.dumps({"checks": rtrrl.runtime_checks_enabled(), "import": t_import, "trace": t_trace,
                  "first_jit_call": t_first, "jit_call": t_jit, "eager_step": t_eager}))
"""


def measure(checks: bool) -> dict:
    env = dict(os.environ)
    env.pop("RTRRL_RUNTIME_CHECKS", None)
    if checks:
        env["RTRRL_RUNTIME_CHECKS"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    # The fastest of three fresh processes per setting (timings on a shared machine vary).
    runs = {checks: [measure(checks) for _ in range(3)] for checks in (False, True)}
    rows = [
        {name: min(r[name] for r in runs[checks]) for name in runs[checks][0]}
        for checks in (False, True)
    ]
    print(f"{'best of 3, seconds':22}{'off':>10}{'on':>10}")
    for name in ("import", "trace", "first_jit_call", "jit_call", "eager_step"):
        off, on = rows[0][name], rows[1][name]
        print(f"{name:22}{off:10.4f}{on:10.4f}")


if __name__ == "__main__":
    main()

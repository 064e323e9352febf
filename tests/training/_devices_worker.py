"""Training runs for ``test_devices.py``, in a process of their own (JAX fixes its device
count at start-up).

    python _devices_worker.py OUT CPU_DEVICES RUN [RUN ...] [--join ID COUNT ADDRESS]

Each ``RUN`` is ``DEVICES,SEEDS,SEED[,ENV_DEVICES,NUM_ENVS[,ESTIMATOR]]`` (``DEVICES``: a
count, ``all`` or ``none``, unset; by default 1, 2 and the tiny config's estimator) of the tiny
CartPole-v1 learner; run ``i`` is saved to ``OUT/run<i>.npz`` (learning curves and
every final state leaf) by process 0. With ``--join`` the process is process ``ID`` of
``COUNT``, coordinated at ``ADDRESS``, through `rtrrl.training.initialize_distributed`.
"""

import os
import sys

import jax

args = sys.argv[1:]
join = args[args.index("--join") + 1 :] if "--join" in args else []
out, cpu_devices, *runs = args[: args.index("--join")] if join else args
jax.config.update("jax_num_cpu_devices", int(cpu_devices))
jax.config.update("jax_enable_x64", True)  # as in the test session (tests/conftest.py)
if join:
    os.environ["JAX_PROCESS_ID"], os.environ["JAX_NUM_PROCESSES"] = join[0], join[1]
    os.environ["JAX_COORDINATOR_ADDRESS"] = join[2]
    from rtrrl.training import initialize_distributed

    initialize_distributed()

import dataclasses  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from _training_helpers import tiny_config  # noqa: E402

from rtrrl.app.config import build_algorithm, build_env  # noqa: E402
from rtrrl.training import train  # noqa: E402


def leaf_array(x):
    return np.asarray(
        jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x
    )


for i, run in enumerate(runs):
    fields = run.split(",")
    devices, seeds, seed, env_devices, num_envs, estimator = (
        fields + ["1", "2", ""][len(fields) - 3 :]
    )
    config = tiny_config(seeds=int(seeds), seed=int(seed), num_envs=int(num_envs), steps=500)
    if estimator:
        config = dataclasses.replace(config, estimator=estimator)
    choice = {"none": None, "all": "all"}.get(devices, devices)
    loop = dataclasses.replace(
        config.loop(),
        devices=int(choice) if choice and choice != "all" else choice,
        env_devices=int(env_devices),
    )
    env = build_env(config)
    result = train(build_algorithm(config, env), env, loop, progress=False)
    if jax.process_index() == 0:
        arrays = {
            f"leaf{j}": leaf_array(x) for j, x in enumerate(jax.tree.leaves(result.final_state))
        }
        curves = {k: getattr(result, k) for k in ("eval_returns", "train_returns", "td_errors")}
        np.savez(os.path.join(out, f"run{i}.npz"), **arrays, **curves)

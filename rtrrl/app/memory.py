"""An estimate of a run's memory, checked before anything is compiled.

Sizes that do not fit (``--eval-envs 100000000``, ``--window 1000000000``,
``--rollout-length 1000000000``, ``--eval-every 10**12``) would otherwise fail deep inside
XLA with an out-of-memory traceback, after minutes of compiling. Every term below comes from
shapes alone (`jax.eval_shape`), nothing is allocated:

- the training states of all seeds (parameters, optimiser, per-environment carries and the
  estimator states, e.g. truncated BPTT's window of inputs and hidden states);
- what one learner step makes beside the state, where it is large: PPO's rollout segment
  (``rollout_length`` steps of every environment);
- the keys of one chunk (``steps_per_chunk`` of them per seed, split at once);
- the evaluation rollout (``eval_envs`` copies of the environment and the agent's memory).

The run is refused when the estimate exceeds the memory the system reports as available.
The estimate is a lower bound (XLA needs temporaries on top), so what it refuses cannot run.
"""

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax

from .. import prng
from ..algorithms import PPO
from ..envs import AbstractEnvironment
from ..training import ChunkPlan

if TYPE_CHECKING:
    from .config import TrainConfig

_FLAGS = {
    "training state": "--num-envs, --seeds, --hidden-size or --window",
    "PPO rollout segment": "--rollout-length or --num-envs",
    "keys of one chunk": "--eval-every",
    "evaluation": "--eval-envs",
}


def _bytes(tree: Any) -> int:
    """Bytes of the array leaves of `tree` (arrays or shapes; typed PRNG keys included)."""
    return sum(
        math.prod(leaf.shape) * leaf.dtype.itemsize
        for leaf in jax.tree.leaves(tree)
        if hasattr(leaf, "shape") and hasattr(leaf, "dtype")
    )


def available_bytes() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` (``None`` where the system does not say)."""
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def estimate(
    config: "TrainConfig", env: AbstractEnvironment, make: Callable, one_seed: Any, num_envs: int
) -> dict[str, int]:
    """Bytes of each large part of the run of `config` (a `TrainConfig`), given the shapes of
    one seed's state with `num_envs` environments (`one_seed`, from `jax.eval_shape`)."""
    loop = config.loop()
    key = prng.key(config.seed)
    carries = _bytes(one_seed.envs)
    shared = _bytes(one_seed) - carries
    parts = {
        "training state": loop.num_seeds * (shared + carries * loop.num_envs // num_envs),
    }
    learner = jax.eval_shape(make, key)  # shapes only: sizes and static options
    plan = ChunkPlan.of(loop, learner)
    key_bytes = _bytes(jax.eval_shape(lambda: key))
    parts["keys of one chunk"] = plan.steps_per_chunk * key_bytes * loop.num_seeds
    if isinstance(learner, PPO):

        def segment(key):
            ppo = make(key)
            return ppo.collect(ppo.init(key, env, num_envs=loop.num_envs), env, key)[1]

        parts["PPO rollout segment"] = _bytes(jax.eval_shape(segment, key)) * loop.num_seeds
    observation_and_state = jax.eval_shape(env.reset, key)
    hidden = jax.eval_shape(lambda key: make(key).cell.init_hidden(), key)
    per_env = _bytes(observation_and_state) + 2 * _bytes(hidden)
    parts["evaluation"] = loop.eval_envs * per_env * loop.num_seeds
    return parts


def check_memory(
    config: "TrainConfig", env: AbstractEnvironment, make: Callable, one_seed: Any, num_envs: int
) -> None:
    """Raise a `ValueError` naming the flags when the run cannot fit in the memory available
    (arguments as for `estimate`)."""
    available = available_bytes()
    if available is None:
        return
    parts = estimate(config, env, make, one_seed, num_envs)
    total = sum(parts.values())
    if total <= available:
        return
    largest = max(parts, key=parts.__getitem__)
    detail = ", ".join(f"{name} {_gib(size)}" for name, size in parts.items() if size)
    flags = _FLAGS[largest]
    if config.env_option and largest in ("training state", "evaluation"):
        # Environment options (``num_bits=10**9``) size observations and states too.
        flags += f", or the environment's options (--env-option {' '.join(config.env_option)})"
    raise ValueError(
        f"This run needs at least {_gib(total)} of memory ({detail}), but only "
        f"{_gib(available)} is available. The largest part is the {largest}: lower {flags}."
    )


def _gib(size: int) -> str:
    return f"{size / 2**30:.3g} GiB" if size >= 2**30 else f"{size / 2**20:.3g} MiB"

"""Seeds spread over devices and hosts: the mesh, where the arrays live, what comes back.

With ``LoopConfig(devices=D)`` the S seeds are split into D blocks of S/D consecutive seeds,
block d on device d of a one-axis mesh ``("seeds",)``. Every array with a leading seed axis
(each leaf of the states, shape ``(S, ...)``; the run keys ``(S,)``; the active mask ``(S,)``)
gets the sharding ``NamedSharding(mesh, P("seeds"))``; the chunk index is replicated.

The chunk program runs under `jax.shard_map`: each device runs the single-device program
(`jax.vmap` over its S/D seeds of the per-seed scan and evaluation) on its own block, and no
value crosses devices, since seeds never interact. Each seed's computation is therefore the
one it does on one device, up to the rounding of a program compiled apart
(``tests/training/test_devices.py`` checks it against one device; docs/devices.md has the
measured differences).

With ``LoopConfig(env_devices=E)`` the mesh has two axes, ``("seeds", "envs")`` of shape
``(D/E, E)``: each seed's B environments are split too, device ``(i, e)`` stepping
environments ``e·B/E`` to ``(e+1)·B/E`` of the seeds of block ``i``. The per-environment
leaves (`AbstractAlgorithm.env_leaves`, shape ``(S, B, ...)``) get ``P("seeds", "envs")``;
the rest of the state (parameters, optimiser, running statistics), replicated over
``"envs"``, is computed identically on the E devices of a seed. Where the learner combines
its environments it gathers them over ``"envs"`` (`rtrrl._env_axis`, whose axis is named
while the chunk program is traced) and reduces them as one device does, so each seed's run
equals its one-device run up to the same rounding. The evaluation, which reads only the
replicated part, runs whole on each of a seed's devices.

Between chunks only the per-seed totals, evaluation returns and diagnostics, ``(S,)`` each,
come to the host; the states stay on their devices. With several processes
(`initialize_distributed`) the mesh spans every process's devices, each process places the
blocks of its own devices, and `host_copy` gathers a full copy (for metrics, checkpoints
and the result) on every process, since a gather is a collective that all of them join.
"""

import os
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .._env_axis import ENV_AXIS, env_axis
from ._records import check_envs_divide, check_seeds_divide

SEED_AXIS = "seeds"


def initialize_distributed() -> None:
    """Join a multi-process JAX run (call before anything else uses JAX).

    Reads ``JAX_COORDINATOR_ADDRESS`` (``host:port`` of process 0), ``JAX_NUM_PROCESSES``
    and ``JAX_PROCESS_ID``; where unset, `jax.distributed.initialize` detects them from the
    cluster (SLURM, Open MPI, Kubernetes, Cloud TPU). On CPU the processes exchange data
    through gloo (JAX's default CPU collectives).
    """
    count = os.environ.get("JAX_NUM_PROCESSES")
    index = os.environ.get("JAX_PROCESS_ID")
    jax.distributed.initialize(
        coordinator_address=os.environ.get("JAX_COORDINATOR_ADDRESS"),
        num_processes=int(count) if count else None,
        process_id=int(index) if index else None,
    )


def make_mesh(
    devices: int | str | None, num_seeds: int, env_devices: int = 1, num_envs: int = 1
) -> Mesh | None:
    """The ``("seeds",)`` mesh of `devices` (a count, ``"all"``), the ``("seeds", "envs")``
    mesh of shape ``(devices / env_devices, env_devices)`` where `env_devices` > 1, or
    ``None`` for the single-device program: ``devices`` unset or 1 in one process.

    In a multi-process run the mesh must hold every process's devices (unset means all).

    Raises:
        ValueError: more devices than there are, or counts that do not divide.
    """
    available = jax.devices()
    multi = jax.process_count() > 1
    if devices is None:
        devices = "all" if multi else 1
    count = len(available) if devices == "all" else int(devices)
    if count > len(available):
        raise ValueError(
            f"`devices` (--devices) = {count}, but JAX sees {len(available)} device(s) "
            f"({available[0].platform}): pass at most {len(available)}, or 'all'."
        )
    if multi and count != len(available):
        raise ValueError(
            f"`devices` (--devices) = {count} in a run of {jax.process_count()} processes: "
            f"the mesh must hold every process's devices; pass 'all' ({len(available)})."
        )
    check_seeds_divide(num_seeds, count, env_devices)
    check_envs_divide(num_envs, env_devices)
    if count == 1:
        return None
    if env_devices == 1:
        return Mesh(np.asarray(available[:count]), (SEED_AXIS,))
    # A seed's env blocks on neighbouring devices (the same host, where there are several).
    grid = np.asarray(available[:count]).reshape(count // env_devices, env_devices)
    return Mesh(grid, (SEED_AXIS, ENV_AXIS))


def has_env_axis(mesh: Mesh | None) -> bool:
    """Whether `mesh` splits each seed's environments (``LoopConfig.env_devices`` > 1)."""
    return mesh is not None and ENV_AXIS in mesh.axis_names


def state_specs(states: Any, env_leaves: Any, mesh: Mesh | None) -> Any:
    """The `PartitionSpec` of each leaf of the stacked `states` (``None`` at non-arrays):
    ``P("seeds", "envs")`` where `env_leaves` (`AbstractAlgorithm.env_leaves`) is true on an
    env-split `mesh`, else ``P("seeds")``."""
    split = has_env_axis(mesh)

    def spec(leaf, per_env):
        if not eqx.is_array(leaf):
            return None
        if split and per_env:
            return PartitionSpec(SEED_AXIS, ENV_AXIS)
        return PartitionSpec(SEED_AXIS)

    return jax.tree.map(spec, states, env_leaves)


def shard_seeds(tree: Any, mesh: Mesh | None, specs: Any = None) -> Any:
    """`tree` with every array leaf split along its leading (seed) axis over `mesh`, or as
    its entry of `specs` (a tree like `tree`'s, from `state_specs`); unchanged without a
    mesh. Each process places only the blocks of its own devices, read from its own full
    copy of `tree` (every process builds the same one)."""
    if mesh is None:
        return tree

    def place(leaf, spec=None):
        if not eqx.is_array(leaf):
            return leaf
        spec = PartitionSpec(SEED_AXIS) if spec is None else spec
        if _is_key(leaf):
            impl = jax.random.key_impl(leaf)
            return jax.random.wrap_key_data(place(jax.random.key_data(leaf), spec), impl=impl)
        host = np.asarray(leaf)
        sharding = NamedSharding(mesh, spec)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    if specs is None:
        return jax.tree.map(place, tree)
    return jax.tree.map(place, tree, specs, is_leaf=lambda x: x is None)


def chunk_inputs(chunk: int, active: list[bool], mesh: Mesh | None) -> tuple[Any, Any]:
    """The chunk index (replicated) and the active mask (split like the seeds)."""
    if mesh is None:
        return jax.numpy.asarray(chunk, jax.numpy.int32), jax.numpy.asarray(active)
    replicated = NamedSharding(mesh, PartitionSpec())
    index = np.asarray(chunk, np.int32)
    return (
        jax.make_array_from_callback((), replicated, lambda _: index),
        shard_seeds(np.asarray(active), mesh),
    )


def shard_chunk(chunk_fn: Callable, mesh: Mesh, specs: Any = None) -> Callable:
    """`chunk_fn` ``(states, keys, chunk, active) -> (states, totals, returns, extra)``, every
    input and output but ``chunk`` with a leading seed axis, run blockwise on `mesh` (jitted;
    ``.lower`` like `make_chunk_function`'s). `specs`: the states' (`state_specs`; default
    ``P("seeds")`` for every leaf). On an env-split mesh the chunk program is traced with the
    ``"envs"`` axis named (`rtrrl._env_axis.env_axis`)."""
    seeds = PartitionSpec(SEED_AXIS)
    state_spec = seeds if specs is None else specs
    axis = ENV_AXIS if has_env_axis(mesh) else None
    # Non-array leaves (static settings inside the states) cannot cross `shard_map`: they
    # are closed over on the way in, and recorded while tracing on the way out.
    outputs_static: list[Any] = []

    def sharded(states, keys, chunk, active):
        dynamic, static = eqx.partition(states, eqx.is_array)

        def block(dynamic, keys, chunk, active):
            with env_axis(axis):
                out = chunk_fn(eqx.combine(dynamic, static), keys, chunk, active)
            out_dynamic, out_static = eqx.partition(out, eqx.is_array)
            outputs_static[:] = [out_static]
            return out_dynamic

        # JAX's check of which values vary across devices (which would ask the per-seed
        # program to mark its zero-initialised scan carries) is off: over "seeds" no value
        # crosses devices, and over "envs" the replicated values are computed from gathered
        # ones, identically on every device.
        out = jax.shard_map(
            block,
            mesh=mesh,
            in_specs=(state_spec, seeds, PartitionSpec(), seeds),
            out_specs=(state_spec, seeds, seeds, seeds),
            check_vma=False,
        )(dynamic, keys, chunk, active)
        return eqx.combine(out, outputs_static[0])

    return eqx.filter_jit(sharded)


def _is_key(leaf) -> bool:
    """Whether `leaf` holds typed PRNG keys (placed and gathered through their key data)."""
    return jax.numpy.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def host_copy(tree: Any) -> Any:
    """`tree` with every array that spans several processes gathered, in full, onto the host
    of every process (a collective: every process must call it, in the same order); other
    leaves unchanged."""

    def gather(leaf):
        if not isinstance(leaf, jax.Array) or leaf.is_fully_addressable:
            return leaf
        if _is_key(leaf):
            impl = jax.random.key_impl(leaf)
            data = gather(jax.random.key_data(leaf))
            return jax.random.wrap_key_data(jax.numpy.asarray(data), impl=impl)
        return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))

    return jax.tree.map(gather, tree)

"""Seeds spread over devices and hosts: the mesh, where the arrays live, what comes back.

With ``LoopConfig(devices=D)`` the S seeds are split into D blocks of S/D consecutive seeds,
block d on device d of a one-axis mesh ``("seeds",)``. Every array with a leading seed axis
(each leaf of the states, shape ``(S, ...)``; the run keys ``(S,)``; the active mask ``(S,)``)
gets the sharding ``NamedSharding(mesh, P("seeds"))``; the chunk index is replicated.

The chunk program runs under `jax.shard_map`: each device runs the single-device program
(`jax.vmap` over its S/D seeds of the per-seed scan and evaluation) on its own block, and no
value crosses devices, since seeds never interact. Each seed's computation is therefore the
one it does on one device, bit for bit on CPU (``tests/training/test_devices.py`` checks it
against one device). The environments within a seed stay on that seed's device: splitting
them would sum a seed's per-environment gradients across devices, in another order.

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

from ._records import check_seeds_divide

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


def make_mesh(devices: int | str | None, num_seeds: int) -> Mesh | None:
    """The ``("seeds",)`` mesh of `devices` (a count, ``"all"``), or ``None`` for the
    single-device program: ``devices`` unset or 1 in one process.

    In a multi-process run the mesh must hold every process's devices (unset means all).

    Raises:
        ValueError: more devices than there are, or a seed count they do not divide.
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
    check_seeds_divide(num_seeds, count)
    if count == 1:
        return None
    return Mesh(np.asarray(available[:count]), (SEED_AXIS,))


def shard_seeds(tree: Any, mesh: Mesh | None) -> Any:
    """`tree` with every array leaf split along its leading (seed) axis over `mesh`;
    unchanged without a mesh. Each process places only the blocks of its own devices,
    read from its own full copy of `tree` (every process builds the same one)."""
    if mesh is None:
        return tree
    sharding = NamedSharding(mesh, PartitionSpec(SEED_AXIS))

    def place(leaf):
        if not eqx.is_array(leaf):
            return leaf
        if _is_key(leaf):
            impl = jax.random.key_impl(leaf)
            return jax.random.wrap_key_data(place(jax.random.key_data(leaf)), impl=impl)
        host = np.asarray(leaf)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(place, tree)


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


def shard_chunk(chunk_fn: Callable, mesh: Mesh) -> Callable:
    """`chunk_fn` ``(states, keys, chunk, active) -> (states, totals, returns, extra)``, every
    input and output but ``chunk`` with a leading seed axis, run blockwise on `mesh` (jitted;
    ``.lower`` like `make_chunk_function`'s)."""
    seeds = PartitionSpec(SEED_AXIS)
    # Non-array leaves (static settings inside the states) cannot cross `shard_map`: they
    # are closed over on the way in, and recorded while tracing on the way out.
    outputs_static: list[Any] = []

    def sharded(states, keys, chunk, active):
        dynamic, static = eqx.partition(states, eqx.is_array)

        def block(dynamic, keys, chunk, active):
            out = chunk_fn(eqx.combine(dynamic, static), keys, chunk, active)
            out_dynamic, out_static = eqx.partition(out, eqx.is_array)
            outputs_static[:] = [out_static]
            return out_dynamic

        # No collectives inside, so JAX's check of which values vary across devices (which
        # would ask the per-seed program to mark its zero-initialised scan carries) is off.
        out = jax.shard_map(
            block,
            mesh=mesh,
            in_specs=(seeds, seeds, PartitionSpec(), seeds),
            out_specs=seeds,
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

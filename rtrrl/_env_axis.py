"""The environments of one seed split over devices: what a learner calls where they meet.

A learner's `step` sees a leading environment axis of size ``B`` on its per-environment
arrays. Where the environments of a seed are split over ``E`` devices (the ``"envs"`` axis
of the training mesh, ``LoopConfig.env_devices``), each device holds a block of ``B/E`` of
them, block ``e`` on the device with ``axis_index("envs") == e``, and the learner must combine
the blocks wherever environments meet (one parameter update from all of them, shared running
statistics, batch metrics). It does so through two functions:

- `gather_envs`: the full ``(B, ...)`` batch from every device's ``(B/E, ...)`` block
  (`jax.lax.all_gather`, tiled), on every device of the seed;
- `env_block`: this device's ``(B/E, ...)`` block of a full ``(B, ...)`` batch computed
  identically on every device (the per-environment keys, the scaled rewards).

Without the axis both are the identity, so the one-device program is unchanged. Gathering the
per-environment values and reducing them as one device does (rather than a `jax.lax.psum`
of per-device partial sums) keeps each reduction's order of additions, hence its rounding:
the update is the one-device update. It sends each device's ``B/E`` per-environment
directions instead of one partial sum: ``(E-1)·B/E`` parameter-sized arrays arrive per step
and device instead of about one, which is small for the networks RTRRL trains online.

The training loop names the axis while it traces the chunk program (`env_axis`); a learner
traced anywhere else runs unchanged.
"""

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

import jax

ENV_AXIS = "envs"

_axis: contextvars.ContextVar[str | None] = contextvars.ContextVar("env_axis", default=None)


@contextlib.contextmanager
def env_axis(name: str | None) -> Iterator[None]:
    """Within the block, learners combine their environments over the mesh axis `name`
    (``None``: they are all on this device). Set while tracing, inside `jax.shard_map`."""
    token = _axis.set(name)
    try:
        yield
    finally:
        _axis.reset(token)


def env_shards() -> int:
    """``E``: how many devices share this seed's environments (1 without the axis)."""
    name = _axis.get()
    return 1 if name is None else jax.lax.axis_size(name)


def gather_envs(tree: Any) -> Any:
    """Every leaf ``(B/E, ...)`` -> ``(B, ...)``, the blocks of all ``E`` devices in order."""
    name = _axis.get()
    if name is None:
        return tree
    return jax.tree.map(lambda x: jax.lax.all_gather(x, name, axis=0, tiled=True), tree)


def env_block(tree: Any) -> Any:
    """Every leaf ``(B, ...)`` -> this device's block ``(B/E, ...)``: rows ``e·B/E`` to
    ``(e+1)·B/E`` for ``e = axis_index``."""
    name = _axis.get()
    if name is None:
        return tree
    index, shards = jax.lax.axis_index(name), jax.lax.axis_size(name)

    def block(x):
        size = x.shape[0] // shards
        return jax.lax.dynamic_slice_in_dim(x, index * size, size, axis=0)

    return jax.tree.map(block, tree)

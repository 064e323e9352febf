"""Fixed 0/1 wirings of a CTRNN: which entries of ``W ∈ R^{N×(I+N+1)}`` may be non-zero.

A wiring is a strategy object: `CTRNN(..., wiring=RandomSparse(0.5))` asks it once, at
construction, for a boolean mask of shape ``(hidden, input + hidden + 1)`` whose columns are
ordered like the columns of ``W``: inputs, hidden (recurrent), bias. The bias column is always
connected. The mask is built from `jax.random` operations only, so a cell with a wiring can be
constructed under `jax.vmap` (one cell per seed) as well as eagerly; each `mask` is compiled
(`eqx.filter_jit`, sizes static) because building it op by op takes seconds.
"""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp

from .._types import Array, Bool, PRNGKey


class AbstractWiring(eqx.Module):
    """Chooses the fixed connectivity mask of a CTRNN's weight matrix."""

    @abc.abstractmethod
    def mask(
        self, input_size: int, hidden_size: int, *, key: PRNGKey
    ) -> Bool[Array, "hidden columns"]:
        """The mask ``m[i, j]``: may neuron ``i`` read column ``j`` of ``[x, h, 1]``?

        **Arguments:** ``input_size`` ``I``, ``hidden_size`` ``N``, ``key`` for random wirings.

        **Returns:** a boolean array of shape ``(N, I + N + 1)`` whose last column is all true.
        """


def _with_bias(block: Bool[Array, "hidden sources"]) -> Bool[Array, "hidden columns"]:
    return jnp.concatenate([block, jnp.ones((block.shape[0], 1), bool)], axis=1)


class Dense(AbstractWiring):
    """Every neuron reads every input and every neuron (the default; `CTRNN` stores no mask)."""

    @eqx.filter_jit
    def mask(
        self, input_size: int, hidden_size: int, *, key: PRNGKey
    ) -> Bool[Array, "hidden columns"]:
        return jnp.ones((hidden_size, input_size + hidden_size + 1), bool)


class RandomSparse(AbstractWiring):
    """Each input and recurrent connection is kept independently with probability `density`.

    **Arguments:** ``density``: the probability of keeping a connection, in ``(0, 1]``.
    """

    density: float = eqx.field(static=True)

    def __check_init__(self) -> None:
        if not 0.0 < self.density <= 1.0:
            raise ValueError(f"RandomSparse: `density` must be in (0, 1], got {self.density}.")

    def mask(
        self, input_size: int, hidden_size: int, *, key: PRNGKey
    ) -> Bool[Array, "hidden columns"]:
        shape = (hidden_size, input_size + hidden_size)
        return _with_bias(jax.random.bernoulli(key, self.density, shape))


def _fanout(key: PRNGKey, sources: int, targets: int, k: int) -> Bool[Array, "targets sources"]:
    """Each source connects to exactly `k` distinct random targets (``k <= targets``)."""
    scores = jax.random.uniform(key, (sources, targets))
    # The rank of each score within its row; the k smallest ranks are a uniform k-subset.
    ranks = jnp.argsort(jnp.argsort(scores, axis=1), axis=1)
    return (ranks < k).T


def _cover(key: PRNGKey, block: Bool[Array, "targets sources"]) -> Bool[Array, "targets sources"]:
    """Give every target that has no incoming connection one random source."""
    targets, sources = block.shape
    pick = jax.random.randint(key, (targets,), 0, sources)
    lonely = ~jnp.any(block, axis=1)
    return block | (lonely[:, None] & (jnp.arange(sources)[None, :] == pick[:, None]))


class NCP(AbstractWiring):
    """Neural Circuit Policy wiring (Lechner et al. 2020), sized automatically like `AutoNCP`.

    The ``N`` neurons are split into layers, in this order along the hidden axis:
    ``inter`` (``N - motor - command``), ``command`` (``max(1, ⌊0.4 (N - motor)⌋)``) and
    ``motor`` (the last `motor_neurons`). Synapses, with ``d = density``:

    - inputs → inter: each input reaches ``max(1, ⌊d·inter⌋)`` inter neurons;
    - inter → command: each inter neuron reaches ``max(1, ⌊d·command⌋)`` command neurons;
    - command → command: ``max(1, ⌊2d·command⌋)`` random recurrent synapses;
    - command → motor: each motor neuron reads ``max(1, ⌊d·command⌋)`` command neurons;

    and every inter and command neuron is given one random presynaptic partner if it drew none.
    No other connection exists (in particular no input reaches command or motor neurons).

    **Arguments:**

    - ``motor_neurons``: size of the motor layer (>= 1).
    - ``density``: fraction of the possible synapses drawn per layer, in ``(0, 1]``.
    """

    motor_neurons: int = eqx.field(static=True)
    density: float = eqx.field(static=True, default=0.5)

    def __check_init__(self) -> None:
        if self.motor_neurons < 1:
            raise ValueError(f"NCP: `motor_neurons` must be >= 1, got {self.motor_neurons}.")
        if not 0.0 < self.density <= 1.0:
            raise ValueError(f"NCP: `density` must be in (0, 1], got {self.density}.")

    def layer_sizes(self, hidden_size: int) -> tuple[int, int, int]:
        """``(inter, command, motor)`` for a cell of `hidden_size` neurons."""
        if hidden_size < self.motor_neurons + 2:
            raise ValueError(
                f"NCP with motor_neurons={self.motor_neurons} needs `hidden_size` >= "
                f"{self.motor_neurons + 2} (at least one inter and one command neuron), "
                f"got {hidden_size}."
            )
        rest = hidden_size - self.motor_neurons
        command = max(1, int(0.4 * rest))
        return rest - command, command, self.motor_neurons

    @eqx.filter_jit
    def mask(
        self, input_size: int, hidden_size: int, *, key: PRNGKey
    ) -> Bool[Array, "hidden columns"]:
        inter, command, motor = self.layer_sizes(hidden_size)
        d = self.density
        keys = jax.random.split(key, 7)
        sensory_inter = _cover(keys[1], _fanout(keys[0], input_size, inter, max(1, int(d * inter))))
        inter_command = _cover(keys[3], _fanout(keys[2], inter, command, max(1, int(d * command))))
        n_recurrent = max(1, int(2 * d * command))
        pre = jax.random.randint(keys[4], (n_recurrent,), 0, command)
        post = jax.random.randint(keys[5], (n_recurrent,), 0, command)
        command_command = jnp.zeros((command, command), bool).at[post, pre].set(True)
        # Motor fan-in: a row of `_fanout` drawn for targets=command, read as motor ← command.
        command_motor = _fanout(keys[6], motor, command, max(1, int(d * command))).T

        n = hidden_size
        i0, c0, m0 = 0, inter, inter + command  # first index of each layer on the hidden axis
        recurrent = jnp.zeros((n, n), bool)
        recurrent = recurrent.at[c0:m0, i0:c0].set(inter_command)
        recurrent = recurrent.at[c0:m0, c0:m0].set(command_command)
        recurrent = recurrent.at[m0:, c0:m0].set(command_motor)
        sensory = jnp.zeros((n, input_size), bool).at[i0:c0, :].set(sensory_inter)
        return _with_bias(jnp.concatenate([sensory, recurrent], axis=1))

"""Gated cells: `LSTM` and `GRU`, adapting `equinox.nn.LSTMCell` / `GRUCell` to `AbstractCell`.

They are the usual recurrent baselines of PPO with backpropagation through time (the paper's
"PPO-LSTM"). The wrapped Equinox cell is a field, so its weights are the cell's trainable
leaves and every generic estimator (`RTRL()`, `LocalMSE()`, `TruncatedBPTT`) serves them
through the dense path; `RFLO` is CTRNN-specific and refuses them at ``init``.
"""

import equinox as eqx
import jax.numpy as jnp

from .._types import Array, Features, Float, Hidden, Input, PRNGKey
from ._abstract import AbstractCell


def _check_sizes(name: str, input_size: int, hidden_size: int) -> None:
    for arg, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: `{arg}` must be a positive int, got {value!r}.")


class LSTM(AbstractCell):
    r"""Long short-term memory (Hochreiter & Schmidhuber 1997), via `equinox.nn.LSTMCell`.

    With ``N`` units, gates ``[i, f, g, o] = W_ih x_t + W_hh h_{t-1} + b`` split in four,

        c_t = σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g),      h_t = σ(o) ⊙ tanh(c_t).

    `AbstractCell` carries one flat state vector, so the state is ``s_t = [h_t, c_t] ∈ R^{2N}``
    (`state_size`) and the features the heads read are ``output(s_t) = h_t ∈ R^N``.
    ``hidden_size`` is the number of units ``N``, as in Equinox and PyTorch.

    **Arguments:** ``input_size`` ``I``, ``hidden_size`` ``N`` (both >= 1), ``key`` (weights
    ``U(-1/√N, 1/√N)``, Equinox's initialisation).
    """

    lstm: eqx.nn.LSTMCell
    input_size: int = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)

    def __init__(self, input_size: int, hidden_size: int, *, key: PRNGKey):
        _check_sizes("LSTM", input_size, hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.lstm = eqx.nn.LSTMCell(input_size, hidden_size, key=key)

    def __check_init__(self) -> None:
        if (self.lstm.input_size, self.lstm.hidden_size) != (self.input_size, self.hidden_size):
            raise ValueError(
                f"LSTM: the wrapped LSTMCell has sizes ({self.lstm.input_size}, "
                f"{self.lstm.hidden_size}), expected ({self.input_size}, {self.hidden_size})."
            )

    @property
    def feature_size(self) -> int:
        return self.hidden_size

    @property
    def state_size(self) -> int:
        """Length of the flat state ``[h, c]``: ``2N``."""
        return 2 * self.hidden_size

    def init_hidden(self) -> Float[Array, " state"]:
        return jnp.zeros((self.state_size,), self.lstm.weight_hh.dtype)

    def __call__(self, hidden: Hidden, x: Input) -> Float[Array, " state"]:
        self.check_step_inputs(hidden, x)
        h, c = jnp.split(hidden, 2)
        h, c = self.lstm(x, (h, c))
        return jnp.concatenate([h, c])

    def output(self, hidden: Hidden) -> Features:
        return hidden[: self.hidden_size]


class GRU(AbstractCell):
    r"""Gated recurrent unit (Cho et al. 2014), via `equinox.nn.GRUCell`.

    With reset ``r``, update ``z`` and candidate ``n`` gates,

        r = σ(W_ir x + W_hr h + b_r),   z = σ(W_iz x + W_hz h + b_z),
        n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),   h_t = n + z ⊙ (h_{t-1} - n),

    and the features are the state itself, ``output(h_t) = h_t ∈ R^N``.

    **Arguments:** ``input_size`` ``I``, ``hidden_size`` ``N`` (both >= 1), ``key``.
    """

    gru: eqx.nn.GRUCell
    input_size: int = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)

    def __init__(self, input_size: int, hidden_size: int, *, key: PRNGKey):
        _check_sizes("GRU", input_size, hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.gru = eqx.nn.GRUCell(input_size, hidden_size, key=key)

    def __check_init__(self) -> None:
        if (self.gru.input_size, self.gru.hidden_size) != (self.input_size, self.hidden_size):
            raise ValueError(
                f"GRU: the wrapped GRUCell has sizes ({self.gru.input_size}, "
                f"{self.gru.hidden_size}), expected ({self.input_size}, {self.hidden_size})."
            )

    @property
    def feature_size(self) -> int:
        return self.hidden_size

    @property
    def state_size(self) -> int:
        """Length of the state ``h``: ``N``."""
        return self.hidden_size

    def init_hidden(self) -> Float[Array, " hidden"]:
        return jnp.zeros((self.hidden_size,), self.gru.weight_hh.dtype)

    def __call__(self, hidden: Hidden, x: Input) -> Float[Array, " hidden"]:
        self.check_step_inputs(hidden, x)
        return self.gru(x, hidden)

    def output(self, hidden: Hidden) -> Features:
        return hidden

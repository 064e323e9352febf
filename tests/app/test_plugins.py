"""A researcher's own cell and estimator, defined outside the package, train from the command
line (``--cell module:Name --estimator module:Name``, or a registered name) with run folders,
checkpoints, resume and evaluation, and bad names fail with one clear line."""

import json
import textwrap

import pytest
from _training_helpers import TINY_FLAGS

from rtrrl.app.cli import main
from rtrrl.app.registry import CELLS, ESTIMATORS

# A plain tanh RNN and a one-step estimator, written the way a user would write them: only the
# public base classes, no help from the library's own cells or estimators.
USER_MODULE = textwrap.dedent(
    '''
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from rtrrl.cells import AbstractCell
    from rtrrl.estimators import AbstractGradientEstimator


    class TanhRNN(AbstractCell):
        """h_t = tanh(W h_{t-1} + U x_t + b); features y = h."""

        recurrent: jax.Array
        input_weight: jax.Array
        bias: jax.Array
        input_size: int = eqx.field(static=True)
        hidden_size: int = eqx.field(static=True)

        def __init__(self, input_size, hidden_size, *, key):
            k1, k2 = jax.random.split(key)
            scale = 1.0 / jnp.sqrt(hidden_size)
            self.recurrent = scale * jax.random.normal(k1, (hidden_size, hidden_size))
            self.input_weight = jax.random.normal(k2, (hidden_size, input_size)) / input_size
            self.bias = jnp.zeros(hidden_size)
            self.input_size = input_size
            self.hidden_size = hidden_size

        @property
        def feature_size(self):
            return self.hidden_size

        def init_hidden(self):
            return jnp.zeros(self.hidden_size, self.bias.dtype)

        def __call__(self, hidden, x):
            return jnp.tanh(self.recurrent @ hidden + self.input_weight @ x + self.bias)

        def output(self, hidden):
            return hidden


    class OneStep(eqx.Module):
        """State: the last step's (h_{t-1}, x_t); gradient: the immediate influence only."""

        previous: jax.Array
        x: jax.Array


    class OneStepEstimator(AbstractGradientEstimator):
        """Ĵᵀc = (∂ output(f_θ(h_{t-1}, x_t)) / ∂θ)ᵀ c, with h_{t-1} held fixed."""

        def init(self, cell, hidden, x):
            return OneStep(hidden, x)

        def step(self, cell, hidden, x, state):
            return cell(hidden, x), OneStep(hidden, x)

        def gradient(self, cell, state, cotangent):
            params, static = eqx.partition(cell, eqx.is_inexact_array)

            def features(p):
                full = eqx.combine(p, static)
                return full.output(full(state.previous, state.x))

            return jax.vjp(features, params)[1](cotangent)[0]


    class NoisyState(eqx.Module):
        previous: jax.Array
        x: jax.Array
        scale: jax.Array


    class NoisyOneStepEstimator(AbstractGradientEstimator):
        """OneStepEstimator's gradient times a random factor 1 + ε, ε ~ N(0, 0.1²) per step."""

        stochastic = True

        def init(self, cell, hidden, x, *, key):
            return NoisyState(hidden, x, jnp.ones((), hidden.dtype))

        def step(self, cell, hidden, x, state, *, key):
            scale = 1.0 + 0.1 * jax.random.normal(key, (), hidden.dtype)
            return cell(hidden, x), NoisyState(hidden, x, scale)

        def gradient(self, cell, state, cotangent):
            exact = OneStepEstimator().gradient(cell, OneStep(state.previous, state.x), cotangent)
            return jax.tree.map(lambda g: state.scale * g, exact)
    '''
)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """The module above, importable as ``user_rnn`` (a fresh import for each test)."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "user_rnn.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(__import__("sys").modules, "user_rnn", raising=False)
    return "user_rnn"


def _metrics_rows(run):
    return (run / "metrics.csv").read_text().splitlines()[1:]


@pytest.mark.parametrize("estimator", ["OneStepEstimator", "NoisyOneStepEstimator"])
def test_a_cell_and_an_estimator_from_outside_the_package_train_save_resume_and_evaluate(
    user_module, tmp_path, capsys, estimator
):
    """Also for a stochastic estimator: its keys come from the run's seed, so the resumed run
    draws the same numbers as the uninterrupted one."""
    run = tmp_path / "run"
    flags = [
        "--env", "CartPole-v1", "--cell", f"{user_module}:TanhRNN",
        "--estimator", f"{user_module}:{estimator}", "--lr-decay", "none",
        *TINY_FLAGS,
    ]  # fmt: skip
    assert main(["train", *flags, "--steps", "1000", "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["cell"] == "user_rnn:TanhRNN"
    assert config["estimator"] == f"user_rnn:{estimator}"
    assert (run / "checkpoint.rtrrl").is_file()
    assert len(_metrics_rows(run)) == 2  # evaluations at 500 and 1000 steps

    # Resume in the same folder: the saved import paths rebuild the same objects.
    assert main(["train", "--resume", str(run), "--steps", "2000"]) == 0
    rows = _metrics_rows(run)
    assert len(rows) == 4
    assert [row.split(",")[0] for row in rows] == ["500", "1000", "1500", "2000"]

    # The same run in one go gives the same numbers (timings aside): resume is exact.
    straight = tmp_path / "straight"
    assert main(["train", *flags, "--steps", "2000", "--out", str(straight)]) == 0
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    timing = header.index("steps_per_second")

    def without_timing(folder):
        return [
            [v for i, v in enumerate(row.split(",")) if i != timing]
            for row in _metrics_rows(folder)
        ]

    assert without_timing(run) == without_timing(straight)
    assert main(["eval", "--run", str(run), "--episodes", "2"]) == 0
    assert "return" in capsys.readouterr().out


def test_a_registered_name_is_usable_from_the_command_line(user_module, tmp_path):
    import importlib

    module = importlib.import_module(user_module)
    CELLS.register(
        "test-tanh",
        lambda part, input_size, *, key: module.TanhRNN(input_size, part.hidden_size, key=key),
    )
    ESTIMATORS.register("test-one-step", lambda part: module.OneStepEstimator())
    try:
        run = tmp_path / "run"
        code = main(
            ["train", "--env", "CartPole-v1", "--cell", "test-tanh", "--estimator",
             "test-one-step", *TINY_FLAGS, "--steps", "500", "--out", str(run),
             ]
        )  # fmt: skip
        assert code == 0
        assert len(_metrics_rows(run)) == 1
    finally:
        CELLS._builders.pop("test-tanh")
        ESTIMATORS._builders.pop("test-one-step")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--cell", "ctrn"], r"error: Unknown cell 'ctrn' \(--cell\).*Did you mean ctrnn"),
        (["--estimator", "rfl"], r"error: Unknown estimator 'rfl' \(--estimator\)"),
        (["--cell", "no_such_module_xyz:Cell"], r"error: --cell no_such_module_xyz:Cell: cannot"),
        (["--cell", "user_rnn:Missing"], r"error: --cell user_rnn:Missing: module .* no 'Missing'"),
        (["--cell", "user_rnn:OneStep"], r"error: --cell user_rnn:OneStep: .*AbstractCell"),
        (
            ["--estimator", "user_rnn:TanhRNN"],
            r"error: --estimator user_rnn:TanhRNN: .*AbstractGradientEstimator",
        ),
    ],
)
def test_bad_names_fail_with_one_line_that_names_the_flag(
    user_module, tmp_path, capsys, flags, message
):
    code = main(["train", *flags, *TINY_FLAGS, "--steps", "500", "--out", str(tmp_path / "r")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert __import__("re").search(message, err), err
    assert not (tmp_path / "r").exists()

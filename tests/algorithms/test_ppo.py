"""PPO with BPTT against independent references.

- GAE against a numpy λ-return computed from n-step returns (not the backward recursion),
  with terminations, time-limit truncations and an unfinished episode in one segment;
- the clipped surrogate and the clipped value loss against hand-computed numbers;
- the full loss and its gradient against a Python-loop unroll written out here;
- gradients flow through time inside an episode and never across an episode start;
- a rollout re-run by the loss reproduces the acting log-probabilities (ratio 1);
- one jitted PPO step for each cell and both action kinds; the CLI writes a run folder.

Float64 and strict promotion (conftest), tiny sizes.
"""

import json
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rtrrl import envs
from rtrrl.algorithms import (
    PPO,
    AgentParams,
    PPOState,
    Segment,
    clipped_surrogate_loss,
    generalized_advantages,
    value_loss,
)
from rtrrl.cells import CTRNN, GRU, LSTM
from rtrrl.heads import CategoricalActor, Critic

# --------------------------------------------------------------------------- GAE


def lambda_return_advantages(rewards, values, next_values, terminated, done, gamma, lam):
    """``A_t = G^λ_t - V_t`` with the truncated λ-return of the episode fragment from ``t``.

    ``G^λ_t = (1-λ) Σ_{n=1}^{N-1} λ^{n-1} G^(n)_t + λ^{N-1} G^(N)_t`` where ``N`` steps remain
    in the fragment (up to the episode's end or the segment's end) and
    ``G^(n)_t = Σ_{k<n} γ^k r_{t+k} + γ^n B_{t+n-1}``, with ``B_s = 0`` after a terminal step
    and ``B_s = next_values[s]`` otherwise (a truncation or the segment end bootstraps).
    """
    T = len(rewards)
    out = np.zeros(T)
    for t in range(T):
        end = t
        while end < T - 1 and not done[end]:
            end += 1
        N = end - t + 1

        def n_step(n, t=t):
            g = sum(gamma**k * rewards[t + k] for k in range(n))
            last = t + n - 1
            boot = 0.0 if terminated[last] else next_values[last]
            return g + gamma**n * boot

        g_lambda = sum((1 - lam) * lam ** (n - 1) * n_step(n) for n in range(1, N))
        g_lambda += lam ** (N - 1) * n_step(N)
        out[t] = g_lambda - values[t]
    return out


def test_gae_matches_lambda_returns_with_termination_and_truncation():
    rng = np.random.default_rng(0)
    T = 12
    rewards = rng.normal(size=T)
    values = rng.normal(size=T)
    terminated = np.zeros(T, bool)
    truncated = np.zeros(T, bool)
    terminated[3] = True  # a terminal state: no bootstrap
    truncated[7] = True  # a time-limit cut: bootstrap from the final observation
    done = terminated | truncated
    # Within an episode V(o_{t+1}) is the next step's value; at a done step it is the value
    # of the final observation (arbitrary here), and at the segment's end it bootstraps.
    next_values = np.append(values[1:], rng.normal())
    next_values[done] = rng.normal(size=done.sum())
    gamma, lam = 0.97, 0.9

    ours = generalized_advantages(
        jnp.asarray(rewards),
        jnp.asarray(values),
        jnp.asarray(next_values),
        jnp.asarray(terminated),
        jnp.asarray(done),
        gamma=gamma,
        gae_lambda=lam,
    )
    reference = lambda_return_advantages(rewards, values, next_values, terminated, done, gamma, lam)
    np.testing.assert_allclose(np.asarray(ours), reference, rtol=1e-12, atol=1e-12)

    # The two kinds of episode end, by hand: one-step advantages at the done steps.
    assert float(ours[3]) == pytest.approx(rewards[3] - values[3])
    assert float(ours[7]) == pytest.approx(rewards[7] + gamma * next_values[7] - values[7])


def test_gae_lambda_one_and_zero():
    r = jnp.asarray([1.0, 2.0, 3.0])
    v = jnp.asarray([0.5, -0.5, 1.0])
    nv = jnp.asarray([-0.5, 1.0, 4.0])
    no = jnp.zeros(3, bool)
    gamma = 0.9
    td = generalized_advantages(r, v, nv, no, no, gamma=gamma, gae_lambda=0.0)
    np.testing.assert_allclose(td, r + gamma * nv - v, rtol=1e-12)
    mc = generalized_advantages(r, v, nv, no, no, gamma=gamma, gae_lambda=1.0)
    # λ = 1: the discounted return bootstrapped at the segment's end, minus V.
    expected = [1 + 0.9 * 2 + 0.81 * 3 + 0.729 * 4 - 0.5, 2 + 0.9 * 3 + 0.81 * 4 + 0.5, 3 + 3.6 - 1]
    np.testing.assert_allclose(mc, expected, rtol=1e-12)


# --------------------------------------------------------------------------- loss pieces


def test_clipped_surrogate_by_hand():
    ratio = np.array([0.5, 1.0, 1.5, 1.5, 0.5])
    adv = np.array([1.0, 1.0, 1.0, -1.0, -1.0])
    # min(ρA, clip(ρ, 0.8, 1.2) A) = 0.5, 1.0, 1.2, -1.5, -0.8  -> mean 0.08
    loss = clipped_surrogate_loss(jnp.log(jnp.asarray(ratio)), jnp.zeros(5), jnp.asarray(adv), 0.2)
    assert float(loss) == pytest.approx(-0.08, abs=1e-12)
    # With old log-probs not zero only the difference counts.
    shifted = clipped_surrogate_loss(
        jnp.log(jnp.asarray(ratio)) + 3.0, jnp.full(5, 3.0), jnp.asarray(adv), 0.2
    )
    assert float(shifted) == pytest.approx(-0.08, abs=1e-12)


def test_value_loss_by_hand():
    values = jnp.asarray([1.0, 2.0, 1.0])
    old = jnp.asarray([0.0, 2.0, 0.0])
    returns = jnp.asarray([0.0, 3.0, 1.0])
    # unclipped squares 1, 1, 0; clipped values 0.2, 2, 0.2 -> squares 0.04, 1, 0.64
    assert float(value_loss(values, old, returns, None)) == pytest.approx(0.5 * 2 / 3)
    assert float(value_loss(values, old, returns, 0.2)) == pytest.approx(0.5 * 2.64 / 3)


# --------------------------------------------------------------------------- BPTT

INPUT, HIDDEN, ACTIONS, T, E = 3, 4, 2, 6, 2


def _params(cell_name: str) -> AgentParams:
    keys = jax.random.split(jax.random.key(3), 3)
    cell = {"ctrnn": CTRNN, "lstm": LSTM, "gru": GRU}[cell_name](INPUT, HIDDEN, key=keys[0])
    if isinstance(cell, CTRNN):
        cell = eqx.tree_at(lambda c: c.raw_tau, cell, cell.raw_tau - 4.0)  # short memory, big grads
    return AgentParams(
        cell, CategoricalActor(HIDDEN, ACTIONS, key=keys[1]), Critic(HIDDEN, key=keys[2])
    )


def _segment(params: AgentParams, starts) -> Segment:
    # numpy draws: every eager JAX op would be one more compilation.
    rng = np.random.default_rng(5)
    shape = (E, T)
    return Segment(
        initial_hidden=jnp.asarray(0.3 * rng.normal(size=(E, params.cell.init_hidden().size))),
        inputs=jnp.asarray(rng.normal(size=(E, T, INPUT))),
        episode_start=jnp.asarray(starts, bool),
        actions=jnp.asarray(rng.integers(0, ACTIONS, size=shape), jnp.int32),
        log_probs=jnp.asarray(np.log(rng.uniform(0.3, 0.7, size=shape))),
        values=jnp.asarray(rng.normal(size=shape)),
        advantages=jnp.asarray(rng.normal(size=shape)),
        returns=jnp.asarray(rng.normal(size=shape) + 1.0),
    )


STARTS = [[True, False, False, False, False, False], [False, False, True, False, False, False]]


def reference_loss(algo: PPO, params: AgentParams, segment: Segment):
    """The PPO loss written out: a Python loop over time with explicit resets."""
    logp, ents, vals = [], [], []
    for e in range(E):
        h = segment.initial_hidden[e]
        for t in range(T):
            if STARTS[e][t]:  # static: the reference unrolls in Python
                h = jnp.zeros_like(h)
            h = params.cell(h, segment.inputs[e, t])
            y = params.cell.output(h)
            z = params.actor.weight @ y + params.actor.bias
            log_softmax = z - jax.scipy.special.logsumexp(z)
            logp.append(log_softmax[segment.actions[e, t]])
            ents.append(-jnp.sum(jnp.exp(log_softmax) * log_softmax))
            vals.append(params.critic.weight @ y + params.critic.bias)
    logp, ents, vals = jnp.stack(logp), jnp.stack(ents), jnp.stack(vals)
    adv = segment.advantages.reshape(-1)
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    ratio = jnp.exp(logp - segment.log_probs.reshape(-1))
    eps = algo.clip_eps
    policy = -jnp.mean(jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - eps, 1 + eps) * adv))
    old_v, ret = segment.values.reshape(-1), segment.returns.reshape(-1)
    clipped_v = old_v + jnp.clip(vals - old_v, -eps, eps)
    value = 0.5 * jnp.mean(jnp.maximum((vals - ret) ** 2, (clipped_v - ret) ** 2))
    return policy + algo.vf_coef * value - algo.ent_coef * jnp.mean(ents)


def test_loss_and_gradient_match_python_unroll():
    params = _params("lstm")
    segment = _segment(params, STARTS)
    algo = PPO(params.cell, vf_coef=0.7, ent_coef=0.05)
    loss, grads = eqx.filter_jit(eqx.filter_value_and_grad(lambda p, s: algo.loss(p, s)[0]))(
        params, segment
    )
    ref_loss, ref_grads = eqx.filter_jit(
        eqx.filter_value_and_grad(lambda p: reference_loss(algo, p, segment))
    )(params)
    assert float(loss) == pytest.approx(float(ref_loss), rel=1e-10)
    for ours, ref in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads), strict=True):
        np.testing.assert_allclose(ours, ref, rtol=1e-8, atol=1e-12)

    # The BPTT gradient is not the one-step (truncated) gradient: paths through time count.
    def truncated(p):
        h0 = p.cell.init_hidden()

        def body(h, step):
            x, start = step
            h = p.cell(jax.lax.stop_gradient(jnp.where(start, h0, h)), x)
            y = p.cell.output(h)
            return h, (p.actor.preactivation(y), p.critic(y))

        def one(h, xs, ss):
            return jax.lax.scan(body, h, (xs, ss))[1]

        z, v = jax.vmap(one)(segment.initial_hidden, segment.inputs, segment.episode_start)
        return jnp.sum(z) + jnp.sum(v)

    def full(p):
        z, v = jax.vmap(lambda h, x, s: algo.unroll(p, h, x, s))(
            segment.initial_hidden, segment.inputs, segment.episode_start
        )
        return jnp.sum(z) + jnp.sum(v)

    g_full = eqx.filter_jit(eqx.filter_grad(full))(params).cell
    g_trunc = eqx.filter_jit(eqx.filter_grad(truncated))(params).cell
    difference = sum(
        float(jnp.max(jnp.abs(a - b)))
        for a, b in zip(jax.tree.leaves(g_full), jax.tree.leaves(g_trunc), strict=True)
    )
    assert difference > 1e-3


@pytest.mark.parametrize("cell_name", ["ctrnn", "lstm", "gru"])
def test_gradient_flows_through_time_and_stops_at_episode_start(cell_name):
    params = _params(cell_name)
    algo = PPO(params.cell)
    xs = jnp.asarray(np.random.default_rng(1).normal(size=(T, INPUT)))
    h = params.cell.init_hidden()

    def outputs(xs, starts):
        z, v = algo.unroll(params, h, xs, starts)
        return jnp.concatenate([z, v[:, None]], axis=1)

    jac = jax.jit(jax.jacobian(outputs))
    no_reset = jnp.zeros(T, bool)
    d = jac(xs, no_reset)  # (time out, outputs, time in, input)
    # The last step's outputs depend on the first input: the unroll carries it through time.
    assert float(jnp.max(jnp.abs(d[T - 1, :, 0, :]))) > 1e-6

    reset = no_reset.at[3].set(True)
    d = jac(xs, reset)
    # Perturbing inputs before the episode start changes nothing at or after it...
    np.testing.assert_array_equal(d[3:, :, :3, :], 0.0)
    # ...while within each episode the dependence spans time.
    assert float(jnp.max(jnp.abs(d[2, :, 0, :]))) > 1e-6
    assert float(jnp.max(jnp.abs(d[T - 1, :, 3, :]))) > 1e-6

    # And the same for the loss: later steps' loss terms ignore earlier episodes' inputs.
    segment = _segment(params, [[False, False, False, True, False, False]] * E)
    late_only = eqx.tree_at(lambda s: s.advantages, segment, segment.advantages.at[:, :3].set(0.0))
    algo = PPO(params.cell, normalize_advantages=False, vf_coef=0.0, ent_coef=0.0)
    perturbed = eqx.tree_at(lambda s: s.inputs, late_only, late_only.inputs.at[:, :3].add(1.0))
    loss = jax.jit(lambda s: algo.loss(params, s)[0])
    assert float(loss(late_only)) == float(loss(perturbed))


# --------------------------------------------------------------------------- steps


# LSTM on discrete actions runs under jit in the CLI test below (and in the slow test).
STEP_CASES = [("ctrnn", "CartPole-v1"), ("gru", "Pendulum-v1")]


@pytest.mark.parametrize(("cell_name", "env_id"), STEP_CASES)
def test_one_step_under_jit(cell_name, env_id):
    env = envs.make(env_id)
    cell_class = {"ctrnn": CTRNN, "lstm": LSTM, "gru": GRU}[cell_name]
    cell = cell_class(envs.meta_rl_input_size(env), 4, key=jax.random.key(0))
    # 40 steps: random CartPole episodes end inside the segment.
    algo = PPO(cell, rollout_length=40, epochs=2, minibatches=2)
    state = eqx.filter_jit(lambda key: algo.init(key, env, num_envs=4))(jax.random.key(1))
    assert algo.env_steps_per_step(4) == 160

    @eqx.filter_jit
    def run(state, key):
        collected, segment, _ = algo.collect(state, env, key)
        _, terms = algo.loss(collected.params, segment)
        new_state, metrics = algo.step(state, env, key)
        returns = algo.evaluate(new_state, env, key, num_envs=2, num_steps=10)
        return segment, terms, new_state, metrics, returns

    segment, terms, new_state, metrics, returns = run(state, jax.random.key(2))
    # The loss re-runs the cell over the segment from the stored start state, resetting at
    # episode starts: it reproduces the acting log-probabilities exactly (ratio 1).
    assert float(terms.approx_kl) == pytest.approx(0.0, abs=1e-12)
    assert float(terms.clip_fraction) == 0.0
    if env_id == "CartPole-v1":
        assert int(metrics.episodes_finished) >= 1
        assert bool(jnp.any(segment.episode_start[:, 1:]))
    assert isinstance(new_state, PPOState)
    assert bool(metrics.all_finite)
    assert int(new_state.iteration) == 1
    assert returns.shape == (2,)
    changed = jax.tree.map(
        lambda a, b: bool(jnp.any(a != b)),
        eqx.filter(state.params, eqx.is_inexact_array),
        eqx.filter(new_state.params, eqx.is_inexact_array),
    )
    assert all(jax.tree.leaves(changed))


def test_hyperparameters_are_validated():
    cell = GRU(3, 2, key=jax.random.key(0))
    with pytest.raises(ValueError, match="clip_eps.*got -0.1"):
        PPO(cell, clip_eps=-0.1)
    with pytest.raises(ValueError, match="gae_lambda.*\\[0, 1\\].*1.5"):
        PPO(cell, gae_lambda=1.5)
    with pytest.raises(ValueError, match="rollout_length.*>= 1.*0"):
        PPO(cell, rollout_length=0)
    with pytest.raises(ValueError, match="max_grad_norm"):
        PPO(cell, max_grad_norm=0.0)
    env = envs.make("CartPole-v1")
    good = GRU(envs.meta_rl_input_size(env), 2, key=jax.random.key(0))
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="minibatches.*3.*num_envs.*4"):
        jax.eval_shape(lambda k: PPO(good, minibatches=3).init(k, env, num_envs=4), key)
    with pytest.raises(ValueError, match="input_size=7"):
        jax.eval_shape(lambda k: PPO(cell).init(k, env), key)


# --------------------------------------------------------------------------- product


def test_cli_trains_ppo_and_plot_overlays_algorithms(tmp_path):
    from rtrrl.app import cli
    from rtrrl.app.config import TrainConfig

    out = tmp_path / "ppo"
    argv = [
        "train",
        "--algo",
        "ppo",
        "--cell",
        "lstm",
        "--env",
        "CartPole-v1",
        "--hidden-size",
        "4",
        "--num-envs",
        "2",
        "--minibatches",
        "2",
        "--rollout-length",
        "16",
        "--epochs",
        "1",
        "--steps",
        "128",
        "--eval-every",
        "64",
        "--eval-envs",
        "2",
        "--eval-steps",
        "16",
        "--out",
        str(out),
    ]
    assert cli.main(argv) == 0
    for name in ("config.json", "metrics.csv", "summary.json", "learning_curve.png"):
        assert (out / name).exists(), name
    assert any(out.glob("checkpoint*"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["algo"] == "ppo" and summary["estimator"] is None
    assert summary["total_steps_per_seed"] == 128
    rows = (out / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 2  # header and one row per evaluation (every 64 steps)
    config = json.loads((out / "config.json").read_text())
    assert config["algo"] == "ppo"

    # An RTRRL run folder beside it (its metrics borrowed: only the overlay is checked).
    rtrrl_run = tmp_path / "rtrrl"
    rtrrl_run.mkdir()
    (rtrrl_run / "metrics.csv").write_text((out / "metrics.csv").read_text())
    (rtrrl_run / "config.json").write_text(json.dumps(TrainConfig().to_json()))
    figure = tmp_path / "both.png"
    assert cli.main(["plot", str(out), str(rtrrl_run), "--out", str(figure)]) == 0
    assert figure.exists() and figure.stat().st_size > 0
    assert TrainConfig(algo="ppo").run_name() == "CartPole-v1-ppo-ctrnn-seed0"
    assert TrainConfig().run_name() == "CartPole-v1-ctrnn-rflo-seed0"


def test_config_checks_ppo_options():
    from rtrrl.app.config import TrainConfig

    with pytest.raises(ValueError, match="minibatches.*num_envs"):
        TrainConfig(algo="ppo", num_envs=3, minibatches=2)
    with pytest.raises(ValueError, match="clip_eps"):
        TrainConfig(algo="ppo", clip_eps=0.0)
    with pytest.raises(ValueError, match="freeze_cell.*RTRRL option"):
        TrainConfig(algo="ppo", freeze_cell=True)
    # PPO options stay out of an RTRRL run's fingerprint (old checkpoints still resume).
    assert "lr" not in TrainConfig().fingerprint()
    assert "algo" not in TrainConfig().fingerprint()
    assert TrainConfig(algo="ppo").fingerprint()["lr"] == 1e-3


# --------------------------------------------------------------------------- learning


@pytest.mark.slow
@pytest.mark.optimized
def test_ppo_lstm_solves_cartpole():
    """PPO-LSTM (32 units, Meta-RL input) reaches eval return >= 475 on CartPole-v1.

    Budget: 200k environment steps per seed (11 evaluations of 19,456 steps: 19 iterations
    of 8 envs x 128 steps), seeds 0-4 vmapped, each evaluation 16 episodes. Measured on the
    2-core CPU in float64: every seed reaches 500 by its third evaluation (58k steps);
    about 75 s wall on an idle machine for the whole budget. A seed stops at its first
    evaluation >= 475 (``target_return``): its best return could only grow after it.
    """
    from rtrrl.training import LoopConfig, train

    env = envs.make("CartPole-v1")

    def make(key):
        return PPO(
            LSTM(envs.meta_rl_input_size(env), 32, key=key),
            rollout_length=128,
            epochs=4,
            minibatches=4,
            lr=1e-3,
        )

    config = LoopConfig(
        total_steps=200_000,
        num_envs=8,
        num_seeds=5,
        seed=0,
        eval_every=20_000,
        eval_envs=16,
        patience=None,
        target_return=475.0,
    )
    result = train(make, env, config, progress=False)
    assert result.num_compilations == 1
    assert np.all(result.best_eval_return >= 475.0), result.best_eval_return
    assert math.isfinite(result.env_steps_per_second)

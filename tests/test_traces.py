"""Eligibility traces against independent references.

- `AccumulatingTrace`: after ``t`` updates the trace is ``Σ_k (γλ)^{t-k} g_k`` (explicit sum)
  and its direction is ``δ e``.
- `DutchTrace`: on a linear critic over a fixed recorded episode, plain SGD along the dutch
  trace's direction (``θ ← θ + α · direction``) reproduces, after every step ``h``, the
  weights ``θ_h^h`` of the *online λ-return algorithm* (the forward view, which redoes all
  updates of the episode towards truncated λ-returns at every horizon ``h``), written here
  from its definition (van Seijen et al. 2016, JMLR 17(145), Theorem 1; Sutton & Barto 2018,
  §12.4-12.5). With ``λ = 0`` both traces reduce to semi-gradient TD(0).

The critic parameters are the PyTree ``(w, b)`` with ``∇v̂ = (φ, 1)``; the forward view folds
the bias into the features, ``x = [φ, 1]``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rtrrl.traces import AccumulatingTrace, DutchTrace

FEATURES, T = 3, 7
ALPHA, GAMMA = 0.15, 0.9


def _episode(seed: int = 0):
    """Features ``φ_0..φ_T``, rewards ``R_1..R_T`` and initial weights ``(w_0, b_0)``."""
    rng = np.random.default_rng(seed)
    phi = rng.normal(size=(T + 1, FEATURES))
    rewards = rng.normal(size=T)
    return phi, rewards, rng.normal(size=FEATURES), rng.normal()


def _backward_view(trace, phi, rewards, w0, b0, lam, terminal):
    """The trace's update and direction driven as RTRRL drives them, with SGD step ``α``.

    Returns the weights ``[x]``-folded, after each step: ``θ_1 .. θ_T``.
    """
    params = (jnp.asarray(w0), jnp.asarray(b0))
    e = trace.init(params)
    previous_value = jnp.zeros(())
    decay = GAMMA * lam
    history = []
    for t in range(T):
        w, b = params
        value = jnp.dot(w, phi[t]) + b
        last = terminal and t == T - 1
        value_next = jnp.zeros(()) if last else jnp.dot(w, phi[t + 1]) + b
        td_error = rewards[t] + GAMMA * value_next - value
        grad = (jnp.asarray(phi[t]), jnp.ones(()))
        e = trace.update(e, grad, decay, ALPHA)
        direction = trace.direction(e, grad, td_error, value, previous_value)
        params = jax.tree.map(lambda p, d: p + ALPHA * d, params, direction)
        previous_value = value_next
        history.append(np.concatenate([np.asarray(params[0]), np.asarray(params[1])[None]]))
    return history


def _online_lambda_return(phi, rewards, w0, b0, lam, terminal):
    """The forward view, from its definition (Sutton & Barto 2018, eq. 12.9-12.10).

    For every horizon ``h = 1..T`` the episode is replayed from ``θ_0``:
    ``θ_{t+1}^h = θ_t^h + α [G^λ_{t:h} - θ_t^hᵀ x_t] x_t`` for ``t < h``, with the truncated
    λ-return ``G^λ_{t:h} = (1-λ) Σ_{n=1}^{h-t-1} λ^{n-1} G_{t:t+n} + λ^{h-t-1} G_{t:h}`` and
    the n-step return ``G_{t:t+n} = Σ_{i=1}^{n} γ^{i-1} R_{t+i} + γ^n θ_{t+n-1}ᵀ x_{t+n}``
    bootstrapping with the *final* weights ``θ_k = θ_k^k`` of earlier horizons (no bootstrap
    from a terminal state). Returns ``θ_1^1 .. θ_T^T``.
    """
    x = np.concatenate([phi, np.ones((T + 1, 1))], axis=1)
    final = [np.concatenate([w0, [b0]])]

    def n_step_return(t, n):
        g = sum(GAMMA ** (i - 1) * rewards[t + i - 1] for i in range(1, n + 1))
        if not (terminal and t + n == T):
            g += GAMMA**n * final[t + n - 1] @ x[t + n]
        return g

    for h in range(1, T + 1):
        theta = final[0].copy()
        for t in range(h):
            target = sum(
                (1 - lam) * lam ** (n - 1) * n_step_return(t, n) for n in range(1, h - t)
            ) + lam ** (h - t - 1) * n_step_return(t, h - t)
            theta = theta + ALPHA * (target - theta @ x[t]) * x[t]
        final.append(theta)
    return final[1:]


def _td0(phi, rewards, w0, b0, terminal):
    """Semi-gradient TD(0): ``θ ← θ + α (R + γ θᵀx' - θᵀx) x``."""
    x = np.concatenate([phi, np.ones((T + 1, 1))], axis=1)
    theta, history = np.concatenate([w0, [b0]]), []
    for t in range(T):
        value_next = 0.0 if (terminal and t == T - 1) else theta @ x[t + 1]
        theta = theta + ALPHA * (rewards[t] + GAMMA * value_next - theta @ x[t]) * x[t]
        history.append(theta)
    return history


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "cut"])
@pytest.mark.parametrize("lam", [0.0, 0.5, 0.9, 1.0])
def test_dutch_trace_equals_online_lambda_return(lam, terminal):
    """True online TD(λ) ≡ online λ-return algorithm, at every step (van Seijen et al. 2016)."""
    phi, rewards, w0, b0 = _episode()
    backward = _backward_view(DutchTrace(), phi, rewards, w0, b0, lam, terminal)
    forward = _online_lambda_return(phi, rewards, w0, b0, lam, terminal)
    for h, (got, expected) in enumerate(zip(backward, forward, strict=True), start=1):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12, err_msg=f"step {h}")


def test_accumulating_trace_is_not_the_lambda_return():
    """Sanity of the reference: for λ > 0 the accumulating trace does *not* match the forward
    view exactly (only the dutch trace does), so the equivalence test has teeth."""
    phi, rewards, w0, b0 = _episode()
    backward = _backward_view(AccumulatingTrace(), phi, rewards, w0, b0, 0.9, True)
    forward = _online_lambda_return(phi, rewards, w0, b0, 0.9, True)
    assert not np.allclose(backward[-1], forward[-1], rtol=1e-6)


@pytest.mark.parametrize(
    "trace", [DutchTrace(), AccumulatingTrace()], ids=["dutch", "accumulating"]
)
def test_lambda_zero_is_td0(trace):
    """With ``λ = 0`` both traces give semi-gradient TD(0), step by step."""
    phi, rewards, w0, b0 = _episode(seed=1)
    backward = _backward_view(trace, phi, rewards, w0, b0, 0.0, True)
    for got, expected in zip(backward, _td0(phi, rewards, w0, b0, True), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


def test_accumulating_trace_is_discounted_sum_of_gradients():
    """``e_t = Σ_k (γλ)^{t-k} g_k`` on a two-leaf PyTree; direction ``δ e_t``; `init` is 0."""
    rng = np.random.default_rng(2)
    grads = [(rng.normal(size=(2, 3)), rng.normal(size=2)) for _ in range(5)]
    decay, trace = 0.63, AccumulatingTrace()
    e = trace.init(jax.tree.map(jnp.asarray, grads[0]))
    assert all(np.all(leaf == 0) for leaf in jax.tree.leaves(e))
    for g in grads:
        e = trace.update(e, jax.tree.map(jnp.asarray, g), decay, 123.0)  # step size unused
    for leaf, index in zip(jax.tree.leaves(e), range(2), strict=True):
        expected = sum(decay ** (len(grads) - 1 - k) * g[index] for k, g in enumerate(grads))
        np.testing.assert_allclose(leaf, expected, rtol=1e-12)
    direction = trace.direction(e, grads[-1], jnp.asarray(-1.7), jnp.asarray(2.0), jnp.asarray(5.0))
    for d, leaf in zip(jax.tree.leaves(direction), jax.tree.leaves(e), strict=True):
        np.testing.assert_allclose(d, -1.7 * np.asarray(leaf), rtol=1e-12)


def test_dutch_trace_single_update_formula():
    """One dutch update against its textbook form ``γλ e + (1 - α γλ eᵀx) x`` and one direction
    against ``(δ + V - V_old) e - (V - V_old) x`` (Sutton & Barto 2018, §12.5)."""
    rng = np.random.default_rng(3)
    e_w, e_b, x_w = rng.normal(size=3), rng.normal(), rng.normal(size=3)
    decay, alpha = 0.8, 0.3
    trace = DutchTrace()
    new = trace.update((jnp.asarray(e_w), jnp.asarray(e_b)), (jnp.asarray(x_w), 1.0), decay, alpha)
    x = np.concatenate([x_w, [1.0]])
    e = np.concatenate([e_w, [e_b]])
    expected = decay * e + (1 - alpha * decay * e @ x) * x
    np.testing.assert_allclose(np.concatenate([new[0], new[1][None]]), expected, rtol=1e-12)
    td, v, v_old = 0.4, 1.1, -0.6
    d = trace.direction(new, (jnp.asarray(x_w), jnp.ones(())), td, v, v_old)
    expected = (td + v - v_old) * expected - (v - v_old) * x
    np.testing.assert_allclose(np.concatenate([d[0], d[1][None]]), expected, rtol=1e-12)

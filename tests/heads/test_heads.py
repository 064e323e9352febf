"""Heads and feedback modes against independent references.

- Categorical: ``log_prob``/``entropy`` against NumPy's log-sum-exp and ``-Σ p log p``;
  sampling frequencies against the softmax probabilities (loosely).
- Gaussian: ``log_prob`` against the product of normal densities written out in NumPy;
  ``entropy`` against the closed form ``Σ ½ log(2πe σ²)`` and a Monte Carlo estimate
  ``-E[log π(a)]`` from the actor's own samples; the bounded log-scale for extreme inputs;
  ``clip_action`` against ``np.clip``.
- Critic: ``wᵀy + b`` in NumPy.
- Shape errors: a batched or wrongly sized feature vector raises the heads' own ValueError.
- Feedback: `FeedbackAlignment` matrices have the heads' shapes, are a pure function of the
  key, differ from the heads' weights; `Backprop` hands back the live head weights.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jaxtyping
import numpy as np
import pytest

from rtrrl.heads import (
    Backprop,
    CategoricalActor,
    Critic,
    FeedbackAlignment,
    FeedbackMatrices,
    GaussianActor,
)

FEATURES, ACTIONS = 3, 4
LOW, HIGH = (-1.0, -2.0), (1.0, 0.5)
NUM_SAMPLES = 20_000


def _features(seed: int = 0) -> jax.Array:
    return jax.random.normal(jax.random.key(seed), (FEATURES,))


def _with_bias(head, scale: float = 0.7, seed: int = 1):
    """The head with a random non-zero bias, so that every term of ``W y + b`` matters."""
    bias = scale * jax.random.normal(jax.random.key(seed), head.bias.shape)
    return eqx.tree_at(lambda h: h.bias, head, bias)


def _categorical() -> CategoricalActor:
    return _with_bias(CategoricalActor(FEATURES, ACTIONS, key=jax.random.key(2)))


def _gaussian(**kwargs) -> GaussianActor:
    return _with_bias(GaussianActor(FEATURES, LOW, HIGH, key=jax.random.key(3), **kwargs))


def _logits(head, y) -> np.ndarray:
    return np.asarray(head.weight) @ np.asarray(y) + np.asarray(head.bias)


@pytest.fixture(autouse=True, scope="module")
def _fast_compiles():
    """Tiny programs: XLA's optimisation passes cost more compile time than they save."""
    before = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", before)


@pytest.fixture
def no_jaxtyping():
    """Run without the test-time jaxtyping hook, as a user does: the heads' own checks fire."""
    jaxtyping.config.update("jaxtyping_disable", True)
    try:
        yield
    finally:
        jaxtyping.config.update("jaxtyping_disable", False)


# --------------------------------------------------------------------------- categorical


def test_categorical_log_prob_is_log_softmax():
    """``log π(a|y) = z_a - log Σ_b exp z_b`` with ``z = W y + b`` (NumPy)."""
    actor, y = _categorical(), _features()
    z = _logits(actor, y)
    expected = z - np.log(np.sum(np.exp(z)))
    got = [actor.log_prob(y, jnp.asarray(a, jnp.int32)) for a in range(ACTIONS)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(np.sum(np.exp(got)), 1.0, rtol=1e-12)


def test_categorical_entropy_is_minus_sum_p_log_p():
    """``H = -Σ p log p`` of the softmax probabilities (NumPy)."""
    actor, y = _categorical(), _features()
    z = _logits(actor, y)
    p = np.exp(z) / np.sum(np.exp(z))
    np.testing.assert_allclose(actor.entropy(y), -np.sum(p * np.log(p)), rtol=1e-12)


def test_categorical_entropy_of_uniform_is_log_n():
    """Zero weights and biases give the uniform policy, whose entropy is ``log n``."""
    actor = CategoricalActor(FEATURES, ACTIONS, key=jax.random.key(0))
    actor = jax.tree.map(jnp.zeros_like, actor)
    np.testing.assert_allclose(actor.entropy(_features()), np.log(ACTIONS), rtol=1e-12)


def test_categorical_sample_frequencies_match_softmax():
    """Empirical frequencies of 20k samples are within 0.015 of the softmax probabilities;
    the mode is the argmax of the logits."""
    actor, y = _categorical(), _features()
    keys = jax.random.split(jax.random.key(4), NUM_SAMPLES)
    samples = jax.jit(jax.vmap(lambda k: actor.sample(y, key=k)))(keys)
    assert samples.dtype == jnp.int32 and samples.shape == (NUM_SAMPLES,)
    z = _logits(actor, y)
    p = np.exp(z) / np.sum(np.exp(z))
    freq = np.bincount(np.asarray(samples), minlength=ACTIONS) / NUM_SAMPLES
    np.testing.assert_allclose(freq, p, atol=0.015)
    assert int(actor.mode_from(actor.preactivation(y))) == int(np.argmax(z))


def test_categorical_needs_two_actions():
    with pytest.raises(ValueError, match="num_actions >= 2"):
        CategoricalActor(FEATURES, 1, key=jax.random.key(0))


# --------------------------------------------------------------------------- gaussian


def _gaussian_parts(actor: GaussianActor, y):
    """Mean and standard deviation from the documented parametrisation, in NumPy."""
    z = _logits(actor, y)
    mean, raw = z[: len(LOW)], z[len(LOW) :]
    lo, hi = actor.log_std_min, actor.log_std_max
    return mean, np.exp(lo + (hi - lo) / (1.0 + np.exp(-raw)))


def test_gaussian_log_prob_is_log_of_normal_density():
    """``log Π_i N(a_i; μ_i, σ_i²)`` with the density written out in NumPy."""
    actor, y = _gaussian(), _features()
    mean, std = _gaussian_parts(actor, y)
    action = np.array([0.3, -1.7])
    density = np.exp(-((action - mean) ** 2) / (2 * std**2)) / (std * np.sqrt(2 * np.pi))
    got = actor.log_prob(y, jnp.asarray(action))
    np.testing.assert_allclose(got, np.log(np.prod(density)), rtol=1e-12)


def test_gaussian_entropy_closed_form_and_monte_carlo():
    """``H = Σ ½ log(2πe σ²)``; and ``-mean log π(a)`` over the actor's own samples agrees
    (loosely), as do the samples' mean and standard deviation with ``μ`` and ``σ``."""
    actor, y = _gaussian(), _features()
    mean, std = _gaussian_parts(actor, y)
    closed = np.sum(0.5 * np.log(2 * np.pi * np.e * std**2))
    np.testing.assert_allclose(actor.entropy(y), closed, rtol=1e-12)

    keys = jax.random.split(jax.random.key(5), NUM_SAMPLES)

    def one(k):
        a = actor.sample(y, key=k)
        return a, actor.log_prob(y, a)

    samples, log_probs = jax.jit(jax.vmap(one))(keys)
    assert samples.shape == (NUM_SAMPLES, len(LOW))
    np.testing.assert_allclose(-np.mean(log_probs), closed, atol=0.03)
    assert np.all(np.abs(np.mean(samples, axis=0) - mean) < 4 * std / NUM_SAMPLES**0.5)
    np.testing.assert_allclose(np.std(samples, axis=0), std, rtol=0.03)
    np.testing.assert_allclose(actor.mode_from(actor.preactivation(y)), mean, rtol=1e-12)


@pytest.mark.parametrize("raw", [-1e300, -1e6, -40.0, 0.0, 40.0, 1e6, 1e300])
def test_gaussian_log_std_stays_within_bounds(raw):
    """For any raw scale input ``s`` (even ±1e300) ``log σ ∈ [min, max]`` and is finite; at
    ``s = 0`` it is the midpoint; entropy and log-probability stay finite."""
    actor = _gaussian(log_std_min=-4.0, log_std_max=0.5)
    z = jnp.array([0.1, -0.2, raw, -raw])
    _, log_std = actor.mean_and_log_std(z)
    assert np.all(np.isfinite(log_std))
    assert np.all(log_std >= -4.0) and np.all(log_std <= 0.5)
    if raw == 0.0:
        np.testing.assert_allclose(log_std, [-1.75, -1.75], rtol=1e-12)
    if abs(raw) >= 1e6:
        np.testing.assert_allclose(sorted(np.asarray(log_std)), [-4.0, 0.5], rtol=1e-12)
    assert np.isfinite(actor.entropy_from(z))
    assert np.isfinite(actor.log_prob_from(z, jnp.array([0.0, 0.0])))


def test_gaussian_clip_action_matches_np_clip():
    """`clip_action` is ``np.clip`` to the per-dimension bounds, and keeps the dtype."""
    actor = _gaussian()
    actions = np.array([[5.0, -5.0], [-5.0, 5.0], [0.2, -0.3], [1.0, -2.0], [-1.0001, 0.5001]])
    for action in actions:
        got = actor.clip_action(jnp.asarray(action))
        assert got.dtype == jnp.float64
        np.testing.assert_array_equal(got, np.clip(action, LOW, HIGH))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"low": (1.0,), "high": (0.0,)}, "low < high"),
        ({"low": (0.0, 0.0), "high": (1.0,)}, "one bound per action dimension"),
        ({"log_std_min": 1.0, "log_std_max": 1.0}, "log_std_min < log_std_max"),
    ],
)
def test_gaussian_rejects_bad_bounds(kwargs, match):
    args = {"low": LOW, "high": HIGH, **kwargs}
    low, high = args.pop("low"), args.pop("high")
    with pytest.raises(ValueError, match=match):
        GaussianActor(FEATURES, low, high, key=jax.random.key(0), **args)


# --------------------------------------------------------------------------- critic


def test_critic_value_is_affine():
    """``v̂(y) = wᵀ y + b`` (NumPy), and `as_matrix` is ``w`` as one row."""
    critic = _with_bias(Critic(FEATURES, key=jax.random.key(6)))
    y = _features()
    expected = np.dot(np.asarray(critic.weight), np.asarray(y)) + float(critic.bias)
    np.testing.assert_allclose(critic(y), expected, rtol=1e-12)
    np.testing.assert_array_equal(critic.as_matrix(), np.asarray(critic.weight)[None, :])


# --------------------------------------------------------------------------- shape errors

_HEAD_CALLS = {
    "critic": lambda y: Critic(FEATURES, key=jax.random.key(0))(y),
    "categorical.log_prob": lambda y: _categorical().log_prob(y, jnp.zeros((), jnp.int32)),
    "categorical.entropy": lambda y: _categorical().entropy(y),
    "categorical.sample": lambda y: _categorical().sample(y, key=jax.random.key(0)),
    "gaussian.log_prob": lambda y: _gaussian().log_prob(y, jnp.zeros((len(LOW),))),
    "gaussian.entropy": lambda y: _gaussian().entropy(y),
    "gaussian.sample": lambda y: _gaussian().sample(y, key=jax.random.key(0)),
    "gaussian.preactivation": lambda y: _gaussian().preactivation(y),
}


@pytest.mark.parametrize("call", list(_HEAD_CALLS))
def test_wrong_feature_size_raises(call):
    """A feature vector of the wrong length: the head's ValueError names the shapes."""
    with pytest.raises(ValueError, match=r"one feature vector of shape \(3,\), got shape \(4,\)"):
        _HEAD_CALLS[call](jnp.zeros((FEATURES + 1,)))


@pytest.mark.parametrize("call", list(_HEAD_CALLS))
def test_batched_features_raise_with_vmap_hint(call, no_jaxtyping):
    """A batch of feature vectors (no type-check hook): a ValueError pointing to `jax.vmap`."""
    with pytest.raises(ValueError, match=r"got shape \(2, 3\).*jax\.vmap"):
        _HEAD_CALLS[call](jnp.zeros((2, FEATURES)))


# --------------------------------------------------------------------------- feedback


@pytest.mark.parametrize("make_actor", [_categorical, _gaussian], ids=["categorical", "gaussian"])
def test_feedback_alignment_matrices(make_actor):
    """Fixed matrices: the heads' shapes, the same for the same key, different for another key,
    different from the heads' weights, and what `matrices` returns whatever the heads are."""
    actor, critic = make_actor(), Critic(FEATURES, key=jax.random.key(7))
    fixed = FeedbackAlignment(key=jax.random.key(8)).init(actor, critic)
    assert isinstance(fixed, FeedbackMatrices)
    assert fixed.actor.shape == actor.weight.shape
    assert fixed.critic.shape == critic.as_matrix().shape
    again = FeedbackAlignment(key=jax.random.key(8)).init(actor, critic)
    np.testing.assert_array_equal(fixed.actor, again.actor)
    np.testing.assert_array_equal(fixed.critic, again.critic)
    other = FeedbackAlignment(key=jax.random.key(9)).init(actor, critic)
    assert not np.allclose(fixed.actor, other.actor)
    assert not np.allclose(fixed.critic, other.critic)
    assert not np.allclose(fixed.actor, actor.weight)
    assert not np.allclose(fixed.critic, critic.as_matrix())
    # The fan-in scale of the heads' own initialisation.
    assert np.max(np.abs(fixed.actor)) <= 1 / FEATURES**0.5
    moved = jax.tree.map(lambda x: x + 1.0, (actor, critic))
    m_actor, m_critic = FeedbackAlignment(key=jax.random.key(8)).matrices(fixed, *moved)
    np.testing.assert_array_equal(m_actor, fixed.actor)
    np.testing.assert_array_equal(m_critic, fixed.critic)


def test_backprop_returns_live_weights():
    """`Backprop` keeps no state and hands back the heads' current weights (after a change)."""
    actor, critic = _categorical(), Critic(FEATURES, key=jax.random.key(7))
    feedback = Backprop()
    assert feedback.init(actor, critic) is None
    actor = eqx.tree_at(lambda a: a.weight, actor, actor.weight * 3.0 - 1.0)
    critic = eqx.tree_at(lambda c: c.weight, critic, critic.weight + 2.0)
    m_actor, m_critic = feedback.matrices(None, actor, critic)
    np.testing.assert_array_equal(m_actor, actor.weight)
    np.testing.assert_array_equal(m_critic, np.asarray(critic.weight)[None, :])


def test_gaussian_actor_with_bounds_of_different_lengths_says_so():
    with pytest.raises(ValueError, match=r"need one bound per action dimension each, got 2 and 1"):
        GaussianActor(4, (-1.0, -1.0), (1.0,), key=jax.random.key(0))


# --------------------------------------------------------------------------- Gaussian options


def _normal_log_cdf(x: np.ndarray) -> np.ndarray:
    """``log Φ(x)`` from the error function, in plain Python (an independent reference)."""
    return np.log([0.5 * math.erfc(-v / math.sqrt(2.0)) for v in np.asarray(x, float)])


@pytest.mark.parametrize("state_dependent_std", [True, False])
def test_censored_log_prob_is_the_mass_beyond_a_bound(state_dependent_std):
    """``censored=True``: a dimension whose sample lies beyond a bound scores
    ``log Φ((low - μ)/σ)`` or ``log Φ((μ - high)/σ)`` (the probability of the executed,
    clipped action), one inside scores the normal density; ``censored=False`` scores the
    density everywhere. Low is -1 and -2, high 1 and 0.5."""
    actor = _gaussian(censored=True, state_dependent_std=state_dependent_std)
    plain = _gaussian(censored=False, state_dependent_std=state_dependent_std)  # same leaves
    y = _features()
    z = np.asarray(actor.preactivation(y))
    mean = z[: len(LOW)]
    lo, hi = actor.log_std_min, actor.log_std_max
    std = np.exp(lo + (hi - lo) / (1.0 + np.exp(-z[len(LOW) :])))

    def density(a):
        return -((a - mean) ** 2) / (2 * std**2) - np.log(std * np.sqrt(2 * np.pi))

    for action, expected in [
        (np.array([-3.0, 0.7]), [_normal_log_cdf([(-1.0 - mean[0]) / std[0]])[0], None]),
        (np.array([0.2, -2.5]), [None, _normal_log_cdf([(-2.0 - mean[1]) / std[1]])[0]]),
        (np.array([1.5, 0.1]), [_normal_log_cdf([(mean[0] - 1.0) / std[0]])[0], None]),
        (np.array([0.2, 0.1]), [None, None]),
    ]:
        if expected[1] is None and action[1] > 0.5:
            expected[1] = _normal_log_cdf([(mean[1] - 0.5) / std[1]])[0]
        terms = [e if e is not None else density(action)[i] for i, e in enumerate(expected)]
        got = actor.log_prob(y, jnp.asarray(action))
        np.testing.assert_allclose(got, np.sum(terms), rtol=1e-10)
        np.testing.assert_allclose(plain.log_prob(y, jnp.asarray(action)), np.sum(density(action)))


def test_censored_gradient_vanishes_when_every_sample_is_clipped():
    """With the mean far beyond the upper bound, a clipped sample's censored log-probability
    is ~0 and so is its gradient, while the density's gradient ``(a - μ)/σ²`` is not small:
    the noise that random-walks a plain head's mean further out is gone."""
    actor = _gaussian(censored=True)
    z = jnp.array([8.0, 8.0, 0.0, 0.0])  # means 8 (> highs 1 and 0.5), log σ at the midpoint
    action = jnp.array([8.3, 7.6])  # both clipped to the upper bounds
    censored = jax.grad(actor.log_prob_from)(z, action)
    plain = jax.grad(_gaussian(censored=False).log_prob_from)(z, action)
    assert np.max(np.abs(censored)) < 1e-10
    assert np.max(np.abs(plain[:2])) > 1.0


def test_state_independent_std_reads_the_features_only_for_the_mean():
    """``state_dependent_std=False``: ``W`` has one row per action dimension, the log-scale
    comes from ``std_logit`` whatever the features, the pre-activations are ``[W y + b,
    std_logit]``, and it starts at the same scale as the state-dependent head's midpoint."""
    actor = _gaussian(state_dependent_std=False)
    assert actor.weight.shape == (len(LOW), FEATURES) and actor.std_logit.shape == (len(LOW),)
    assert not actor.state_dependent_std and _gaussian().state_dependent_std
    _, first = actor.mean_and_log_std(actor.preactivation(_features(0)))
    _, second = actor.mean_and_log_std(actor.preactivation(_features(1)))
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, [-2.0, -2.0], rtol=1e-12)  # midpoint of [-5, 1]
    z = actor.preactivation(_features())
    np.testing.assert_allclose(z[: len(LOW)], _logits(actor, _features()), rtol=1e-12)
    np.testing.assert_array_equal(z[len(LOW) :], actor.std_logit)


@pytest.mark.parametrize(
    "make_actor",
    [_categorical, _gaussian, lambda: _gaussian(state_dependent_std=False, censored=True)],
    ids=["categorical", "gaussian", "gaussian-independent-std"],
)
def test_parameter_gradient_and_readout_error_match_autodiff(make_actor):
    """``parameter_gradient(y, ∂L/∂z)`` equals ``jax.grad`` of ``L`` with respect to the head's
    leaves, and ``Wᵀ readout_error(∂L/∂z)`` equals ``jax.grad`` with respect to the features,
    for ``L = log π(a | y)`` (the learner's use of both)."""
    actor, y = make_actor(), _features()
    action = actor.sample(y, key=jax.random.key(4))
    z = actor.preactivation(y)
    error = jax.grad(actor.log_prob_from)(z, action)
    want = eqx.filter_grad(lambda head: head.log_prob(y, action))(actor)
    got = actor.parameter_gradient(y, error)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    to_features = jax.grad(lambda features: actor.log_prob(features, action))(y)
    np.testing.assert_allclose(actor.weight.T @ actor.readout_error(error), to_features, rtol=1e-12)

"""Feedback modes: how head errors reach the cell's features.

A head with pre-activations ``z = W y + b`` and an error ``e = ∂L/∂z`` sends ``Mᵀ e`` to the
features. `Backprop` uses ``M = W`` (the exact gradient, "weight transport");
`FeedbackAlignment` uses a fixed random ``M = B`` of the same shape (Lillicrap et al. 2016),
which the paper's biologically plausible RTRRL uses together with RFLO.
"""

import abc

import equinox as eqx
import jax

from .._types import Array, Float, PRNGKey
from ._actor import AbstractActor
from ._critic import Critic
from ._linear import init_linear


class FeedbackMatrices(eqx.Module):
    """The fixed matrices of `FeedbackAlignment` (never trained)."""

    actor: Float[Array, "outputs features"]
    critic: Float[Array, "1 features"]


class AbstractFeedback(eqx.Module):
    """Chooses the matrices ``M_A``, ``M_C`` that carry head errors to the features."""

    @abc.abstractmethod
    def init(self, actor: AbstractActor, critic: Critic) -> FeedbackMatrices | None:
        """Fixed state of this mode for heads of these shapes (``None`` if it needs none)."""

    @abc.abstractmethod
    def matrices(
        self, fixed: FeedbackMatrices | None, actor: AbstractActor, critic: Critic
    ) -> tuple[Float[Array, "outputs features"], Float[Array, "1 features"]]:
        """``(M_A, M_C)`` for the current heads."""


class Backprop(AbstractFeedback):
    """Errors reach the features through the heads' own weights: ``g = Wᵀ e`` (exact)."""

    def init(self, actor: AbstractActor, critic: Critic) -> None:
        return None

    def matrices(
        self, fixed: None, actor: AbstractActor, critic: Critic
    ) -> tuple[Float[Array, "outputs features"], Float[Array, "1 features"]]:
        return actor.weight, critic.as_matrix()


class FeedbackAlignment(AbstractFeedback):
    """Errors reach the features through fixed random matrices: ``g = Bᵀ e``.

    ``B_A`` and ``B_C`` have the heads' shapes and the heads' initial distribution; they are
    drawn once at `init` from `key` and never trained (Lillicrap et al. 2016; Lemmel & Grosu
    2025 use this for "no weight transport").

    **Arguments:** ``key``: the key the matrices are drawn from.
    """

    key: PRNGKey

    def __init__(self, *, key: PRNGKey):
        self.key = key

    def init(self, actor: AbstractActor, critic: Critic) -> FeedbackMatrices:
        actor_key, critic_key = jax.random.split(self.key)
        outputs, features = actor.weight.shape
        actor_matrix, _ = init_linear(outputs, features, key=actor_key)
        critic_matrix, _ = init_linear(1, features, key=critic_key)
        return FeedbackMatrices(actor_matrix, critic_matrix)

    def matrices(
        self, fixed: FeedbackMatrices, actor: AbstractActor, critic: Critic
    ) -> tuple[Float[Array, "outputs features"], Float[Array, "1 features"]]:
        return fixed.actor, fixed.critic

"""Linear actor/critic heads and the feedback modes that carry their errors to the cell."""

from ._actor import (
    AbstractActor as AbstractActor,
    CategoricalActor as CategoricalActor,
    GaussianActor as GaussianActor,
)
from ._critic import Critic as Critic
from ._feedback import (
    AbstractFeedback as AbstractFeedback,
    Backprop as Backprop,
    FeedbackAlignment as FeedbackAlignment,
    FeedbackMatrices as FeedbackMatrices,
)

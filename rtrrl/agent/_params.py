"""The trained parameters of an agent."""

import equinox as eqx

from ..cells import AbstractCell
from ..heads import AbstractActor, Critic


class AgentParams(eqx.Module):
    """Everything trained: the cell, the actor and the critic (shared by all environments)."""

    cell: AbstractCell
    actor: AbstractActor
    critic: Critic

"""rtrrl: online recurrent reinforcement learning in JAX (Lemmel & Grosu, AAAI 2025)."""

from . import cells as cells, envs as envs, estimators as estimators

__version__ = "0.1.0"

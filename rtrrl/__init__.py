"""rtrrl: online recurrent reinforcement learning in JAX (Lemmel & Grosu, AAAI 2025)."""

from . import cells as cells, envs as envs, estimators as estimators
from ._online import fit_sequence as fit_sequence

__version__ = "0.1.0"

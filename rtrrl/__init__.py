"""rtrrl: online recurrent reinforcement learning in JAX (Lemmel & Grosu, AAAI 2025).

Namespaces: `rtrrl.cells`, `rtrrl.estimators`, `rtrrl.heads`, `rtrrl.traces`, `rtrrl.agent`
(reward and observation normalisation), `rtrrl.algorithms`, `rtrrl.envs`, `rtrrl.presets`,
`rtrrl.prng`. The most used names are re-exported here. `rtrrl.testing` (checks of an
estimator against backpropagation through time, for your own test suite) is imported on its
own: ``import rtrrl.testing``.
"""

from . import (
    agent as agent,
    algorithms as algorithms,
    cells as cells,
    envs as envs,
    estimators as estimators,
    heads as heads,
    presets as presets,
    prng as prng,
    traces as traces,
)
from .algorithms import PPO as PPO, RTRRL as RTRRL, AbstractAlgorithm as AbstractAlgorithm
from .online import fit_sequence as fit_sequence
from .training import LoopConfig as LoopConfig, TrainResult as TrainResult, train as train

__version__ = "0.1.0"

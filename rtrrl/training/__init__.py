"""The compiled training loop: chunks of `lax.scan`, evaluation, early stopping, seeds.

- `train` (``_loop.py``): the Python loop between compiled chunks, with progress and resume;
- ``_chunk.py``: the compiled program of one chunk, seeds' keys and initial states;
- ``_early_stopping.py``: the rows of each evaluation and per-seed early stopping;
- ``_resume.py``: checks that a checkpoint fits the learner and loop resuming it;
- ``_devices.py``: seeds, and each seed's environments, split over devices and processes
  (`LoopConfig.devices`, `LoopConfig.env_devices`);
- ``_sweep.py``: `train_swept`, configurations × seeds as one program (traced
  hyperparameters);
- ``_records.py``: `LoopConfig`, `ChunkPlan`, `TrainProgress`, `TrainResult`.
"""

from ._chunk import (
    evaluation_steps as evaluation_steps,
    init_states as init_states,
    make_chunk_function as make_chunk_function,
    seed_keys as seed_keys,
)
from ._devices import host_copy as host_copy, initialize_distributed as initialize_distributed
from ._early_stopping import reactivate as reactivate, record_evaluation as record_evaluation
from ._loop import train as train
from ._records import (
    METRIC_COLUMNS as METRIC_COLUMNS,
    ChunkPlan as ChunkPlan,
    LoopConfig as LoopConfig,
    NonFiniteError as NonFiniteError,
    TrainProgress as TrainProgress,
    TrainResult as TrainResult,
    check_device_split as check_device_split,
    check_envs_divide as check_envs_divide,
    check_seeds_divide as check_seeds_divide,
)
from ._sweep import (
    Swept as Swept,
    SweptResult as SweptResult,
    SweptState as SweptState,
    train_swept as train_swept,
)

"""Online gradient estimators: `RTRL`, `RFLO`, `LocalMSE`, `SnAp1`, `UORO`, `TruncatedBPTT`,
and `Frozen` (a cell that never learns).

`RTRL`, `LocalMSE`, `RFLO` and `SnAp1` find the structured form for a cell through the cell's type:
`register_kernel` (see `rtrrl.estimators._registry` for how to add a structured cell).
"""

# Importing the built-in kernels registers them (CTRNN: RFLO, LocalMSE, SnAp1; LRU: RTRL,
# LocalMSE, SnAp1).
from . import _kernels as _kernels
from ._abstract import (
    AbstractGradientEstimator as AbstractGradientEstimator,
    key_argument as key_argument,
)
from ._common import IncompatibleCellError as IncompatibleCellError
from ._dense import RTRLState as RTRLState
from ._frozen import Frozen as Frozen
from ._kernels._ctrnn import (
    CTRNNRTRLState as CTRNNRTRLState,
    LocalMSEState as LocalMSEState,
    RFLOState as RFLOState,
)
from ._kernels._lru import LRURTRLState as LRURTRLState
from ._local_mse import LocalMSE as LocalMSE
from ._registry import (
    Kernel as Kernel,
    find_kernel as find_kernel,
    register_kernel as register_kernel,
    unregister_kernel as unregister_kernel,
)
from ._rflo import RFLO as RFLO
from ._rtrl import RTRL as RTRL
from ._snap1 import SnAp1 as SnAp1
from ._structured import AbstractStructuredEstimator as AbstractStructuredEstimator
from ._tbptt import TruncatedBPTT as TruncatedBPTT, TruncatedBPTTState as TruncatedBPTTState
from ._uoro import UORO as UORO, UOROState as UOROState

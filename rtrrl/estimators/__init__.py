"""Online gradient estimators: `RTRL`, `RFLO`, `LocalMSE`, `TruncatedBPTT`, and `Frozen` (a
cell that never learns)."""

from ._abstract import AbstractGradientEstimator as AbstractGradientEstimator
from ._common import IncompatibleCellError as IncompatibleCellError
from ._dense import RTRLState as RTRLState
from ._frozen import Frozen as Frozen
from ._local_mse import LocalMSE as LocalMSE
from ._lru_rtrl import LRURTRLState as LRURTRLState
from ._rflo import RFLO as RFLO, RFLOState as RFLOState
from ._rtrl import RTRL as RTRL
from ._tbptt import TruncatedBPTT as TruncatedBPTT, TruncatedBPTTState as TruncatedBPTTState

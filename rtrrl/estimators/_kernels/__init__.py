"""The built-in structured kernels, one module per cell; importing this package registers them.

- `_ctrnn`: `CTRNN` — RFLO's leaky per-neuron traces (``"rflo"``) and the same traces
  carried by the diagonal of the full recurrent Jacobian (``"snap1"``), O(N·(I+N)) per step,
  state `RFLOState`; the immediate Jacobian in factored form (``"local-mse"``, state
  `LocalMSEState`); exact RTRL with closed-form Jacobians (``"rtrl"``, one GEMM of
  ``2·P·N²`` flops per step, state `CTRNNRTRLState`).
- `_lru`: `LRU` — exact RTRL on the diagonal recurrence (``"rtrl"``, and ``"snap1"``, which
  is the same on a diagonal recurrence) and its SnAp-0 form (``"local-mse"``), O(N·I) per
  step; state `LRURTRLState`.

A new structured cell adds a module here (and its import below): see `rtrrl.estimators._registry`.
"""

from . import _ctrnn as _ctrnn, _lru as _lru

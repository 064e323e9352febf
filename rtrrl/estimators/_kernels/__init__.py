"""The built-in structured kernels, one module per cell; importing this package registers them.

- `_ctrnn`: `CTRNN` — RFLO's leaky per-neuron traces (``"rflo"``), the same traces without
  the leak (``"local-mse"``) and carried by the diagonal of the full recurrent Jacobian
  (``"snap1"``), O(N·(I+N)) per step; state `RFLOState`.
- `_lru`: `LRU` — exact RTRL on the diagonal recurrence (``"rtrl"``, and ``"snap1"``, which
  is the same on a diagonal recurrence) and its SnAp-0 form (``"local-mse"``), O(N·I) per
  step; state `LRURTRLState`.

A new structured cell adds a module here (and its import below): see `rtrrl.estimators._registry`.
"""

from . import _ctrnn as _ctrnn, _lru as _lru

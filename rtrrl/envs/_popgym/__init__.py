"""JAX ports of POPGym tasks (Morad et al., ICLR 2023), registered under popgym's own ids.

Each port is checked against the `popgym` package in ``tests/envs/test_popgym_*.py``.
Importing this package registers every port.
"""

# --- ports of group A (memory and card tasks): one import per module ---

# --- ports of group B (control and board tasks): one import per module ---
from . import _cartpole as _cartpole, _minesweeper as _minesweeper, _pendulum as _pendulum

"""JAX ports of POPGym tasks (Morad et al., ICLR 2023), registered under popgym's own ids.

One module per task (``_<task>.py``); what they share lives in `_common` (ids, registration,
difficulty tables, one-hot encoding) and `_cards` (popgym's card numbering). Each port is
checked against the `popgym` package in ``tests/envs/test_popgym_*.py``. Importing this
package registers every port.
"""

# Importing a port's module registers its three difficulties. Ids are listed in registration
# order (`names`, the `rtrrl envs` table), so the memory and card tasks come first and the
# control and board tasks after them; the `isort: split` keeps ruff from merging the two
# lists into one alphabetical list, which would reorder the ids.
from . import (
    _autoencode as _autoencode,
    _concentration as _concentration,
    _count_recall as _count_recall,
    _higher_lower as _higher_lower,
    _multiarmed_bandit as _multiarmed_bandit,
    _repeat_first as _repeat_first,
    _repeat_previous as _repeat_previous,
)

# isort: split

from . import (
    _battleship as _battleship,
    _cartpole as _cartpole,
    _minesweeper as _minesweeper,
    _pendulum as _pendulum,
)

# isort: split

from .._registry import mark_unavailable

# popgym's navigation tasks are not ported (yet): say so instead of "unknown id".
for _task in ("LabyrinthEscape", "LabyrinthExplore"):
    for _level in ("Easy", "Medium", "Hard"):
        mark_unavailable(
            f"popgym-{_task}{_level}-v0",
            f"popgym's {_task} is not ported to JAX in rtrrl; the ported POPGym tasks are "
            "listed by `rtrrl envs`.",
        )

"""The table of environment ids printed by ``python -m rtrrl.envs`` / ``rtrrl envs``."""

from ._registry import EnvSpec, names, spec
from ._spaces import ActionSpace, Box, Discrete

_SOURCE_ORDER = {"gymnax": 0, "popgym": 1, "brax": 2}


def _describe_space(space: ActionSpace) -> str:
    if isinstance(space, Discrete):
        return f"Discrete({space.n})"
    assert isinstance(space, Box)
    lows, highs = set(space.low), set(space.high)
    if len(lows) == 1 and len(highs) == 1:
        return f"Box({space.size}, [{lows.pop():g}, {highs.pop():g}])"
    return f"Box({space.size})"


def _metadata(env_spec: EnvSpec) -> tuple[str, str]:
    """Observation size and action space with default options, as text."""
    if env_spec.observation_size is not None and env_spec.action_space is not None:
        return str(env_spec.observation_size), _describe_space(env_spec.action_space)
    try:
        # Building is cheap for gymnax and the POPGym ports (no tracing or compilation).
        env = env_spec.factory()
    except ImportError:
        return "?", "? (pip install rtrrl[envs])"
    return str(env.observation_size), _describe_space(env.action_space)


def env_table(source: str | None = None) -> str:
    """A text table of every registered id: id, observation size, action space, source, what.

    Arguments:
        source: only ids of this source (``"gymnax"``, ``"popgym"``, ``"brax"``).

    Raises:
        ValueError: `source` is not one of those.
    """
    if source is not None and source not in _SOURCE_ORDER:
        raise ValueError(f"Unknown source {source!r}: use one of {', '.join(_SOURCE_ORDER)}.")
    ids = sorted(names(source), key=lambda k: _SOURCE_ORDER.get(spec(k).source, 99))
    rows = [("id", "obs", "action", "source", "description")]
    for env_id in ids:
        env_spec = spec(env_id)
        obs, action = _metadata(env_spec)
        rows.append((env_id, obs, action, env_spec.source, env_spec.description))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        "  ".join([*(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)), r[4]]).rstrip()
        for r in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    lines.append(f"{len(ids)} environments. Options: rtrrl.envs.make(id, **options).")
    return "\n".join(lines)

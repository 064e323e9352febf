"""Environment ids: `register`, `make`, `names`, with helpful errors."""

import dataclasses
import difflib
import inspect
from collections.abc import Callable
from typing import Any

from ._base import AbstractEnvironment
from ._spaces import ActionSpace


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """How to build one registered environment id.

    Arguments:
        id: the public id, e.g. ``"CartPole-v1"`` or ``"popgym-RepeatPreviousEasy-v0"``.
        source: the library it comes from: ``"gymnax"``, ``"popgym"`` (JAX port) or ``"brax"``.
        factory: ``factory(**options) -> AbstractEnvironment``. Its keyword parameters are
            the options `make` accepts for this id (checked before calling it).
        description: one line for the ``rtrrl envs`` table.
        observation_size: optional static metadata (with default options) for the
            ``rtrrl envs`` table, for sources whose environments are slow to build or import
            (brax); when absent the table builds the environment to read it.
        action_space: the same for the action space.
    """

    id: str
    source: str
    factory: Callable[..., AbstractEnvironment]
    description: str = ""
    observation_size: int | None = None
    action_space: ActionSpace | None = None

    def options(self) -> list[str]:
        """Names of the keyword options this id accepts."""
        params = inspect.signature(self.factory).parameters.values()
        return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


_REGISTRY: dict[str, EnvSpec] = {}
# Ids a source library has but this package leaves out, with the reason (shown by `make`).
_UNAVAILABLE: dict[str, str] = {}


def register(spec: EnvSpec) -> None:
    """Add an id to the registry (an id may be registered once)."""
    if spec.id in _REGISTRY:
        raise ValueError(f"Environment id {spec.id!r} is already registered.")
    _REGISTRY[spec.id] = spec


def mark_unavailable(name: str, reason: str) -> None:
    """Record that `name` (an id of a source library) is deliberately not registered."""
    _UNAVAILABLE[name] = reason


def spec(name: str) -> EnvSpec:
    """The `EnvSpec` of `name`; an unknown id raises a `ValueError` suggesting close ids."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in _UNAVAILABLE:
        raise ValueError(f"Environment id {name!r} is not available: {_UNAVAILABLE[name]}")
    close = difflib.get_close_matches(name, list(_REGISTRY), n=5, cutoff=0.5)
    lowered = [k for k in _REGISTRY if name.lower() in k.lower()]
    suggestions = list(dict.fromkeys(close + lowered))[:5]
    hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
    raise ValueError(
        f"Unknown environment id {name!r}.{hint} Run `rtrrl envs` (or "
        "`python -m rtrrl.envs`) to list all ids."
    )


def names(source: str | None = None) -> list[str]:
    """All registered ids (optionally only those of one `source`), in registration order."""
    return [k for k, s in _REGISTRY.items() if source is None or s.source == source]


def make(name: str, **options: Any) -> AbstractEnvironment:
    """Build the environment registered as `name`.

    Arguments:
        name: a registered id (see `names()`).
        **options: keyword options of that id, e.g. ``memory_length=8`` for
            ``MemoryChain-bsuite`` or ``obs_mask="vel"`` for ``CartPole-v1``.

    Returns:
        An `AbstractEnvironment`.

    Raises:
        ValueError: unknown id (with suggestions) or an option this id does not take.
    """
    env_spec = spec(name)
    allowed = env_spec.options()
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"Environment {name!r} does not take the option(s) {unknown}; it accepts "
            f"{allowed if allowed else 'no options'}."
        )
    return env_spec.factory(**options)

"""Reading option values written as text: YAML values (config files, ``--env-option``)."""

import re
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from .config import TrainConfig


class _YAMLLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but reading ``1e-3`` as a float (YAML 1.2) instead of a string.

    PyYAML follows YAML 1.1, where a float needs a dot: ``lr-cell: 1e-3`` would be the string
    ``"1e-3"``.
    """


# `self`: this function becomes `_YAMLLoader.construct_mapping` below.
def _mapping_without_duplicate_keys(self: _YAMLLoader, node: yaml.MappingNode, deep=False):
    """PyYAML lets the last of two equal keys win silently; a config with ``lr-cell`` twice
    is a mistake, so say which key."""
    seen = set()
    for key_node, _ in node.value:
        key = self.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(self, node, deep=deep)


_YAMLLoader.construct_mapping = _mapping_without_duplicate_keys

_YAMLLoader.yaml_implicit_resolvers = {
    first: list(resolvers) for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YAMLLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def yaml_value(text: str) -> Any:
    """`text` read as YAML (numbers in exponent notation, like ``1e-3``, are floats)."""
    return yaml.load(text, Loader=_YAMLLoader)


def parse_env_options(config: "TrainConfig") -> dict[str, Any]:
    """``--env-option KEY=VALUE`` pairs (values parsed as YAML scalars) plus ``--obs-mask``, of
    a `TrainConfig`."""
    options: dict[str, Any] = {}
    for item in config.env_option:
        if "=" not in item:
            raise ValueError(f"--env-option {item!r}: write options as KEY=VALUE.")
        key, raw = item.split("=", 1)
        try:
            options[key.strip()] = yaml_value(raw)
        except yaml.YAMLError as error:
            reason = str(error).splitlines()[0]
            raise ValueError(
                f"--env-option {item!r}: the value is not a YAML scalar or list ({reason})."
            ) from None
    if config.obs_mask is not None:
        if "obs_mask" in options:
            raise ValueError(
                "--obs-mask and --env-option obs_mask=... both set the observation mask: "
                "use one of them."
            )
        mask = config.obs_mask
        if mask not in ("pos", "vel"):
            try:
                mask = tuple(int(i) for i in mask.split(","))
            except ValueError:
                raise ValueError(
                    f"--obs-mask {config.obs_mask!r}: use pos, vel or comma-separated indices."
                ) from None
        options["obs_mask"] = mask
    return options

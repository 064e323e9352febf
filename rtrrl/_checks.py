"""Run-time type checks of configuration values, with errors that say what was expected.

Python annotations are not enforced, and ``True`` is an ``int``: a config file's ``gamma:
"0.9"`` or ``total_steps=True`` would otherwise fail late, or run with the wrong meaning.
"""

import dataclasses
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

_PLAIN: dict[Any, tuple[Callable[[Any], bool], str]] = {
    bool: (lambda v: isinstance(v, bool), "true or false"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    float: (lambda v: isinstance(v, int | float) and not isinstance(v, bool), "a number"),
    str: (lambda v: isinstance(v, str), "a string"),
    Path: (lambda v: isinstance(v, str | Path), "a path"),
}


def expected_type(annotation: Any) -> tuple[Callable[[Any], bool], str]:
    """``(is_ok(value), description)`` for an annotation: a plain type (bool, int, float, str,
    Path), a union of them (``None`` meaning "unset"), a ``Literal`` of strings, a tuple of
    strings, or any of these inside ``Annotated``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return expected_type(args[0])
    if origin in (typing.Union, types.UnionType):
        parts = [expected_type(a) for a in args if a is not type(None)]
        optional = type(None) in args
        text = " or ".join(text for _, text in parts) + (" (or unset)" if optional else "")
        return (lambda v: (optional and v is None) or any(ok(v) for ok, _ in parts)), text
    if origin is Literal:
        return (lambda v: isinstance(v, str) and v in args), "one of " + ", ".join(args)
    if origin is tuple:
        return (lambda v: isinstance(v, tuple) and all(isinstance(x, str) for x in v)), (
            "a list of strings"
        )
    return _PLAIN[annotation]


def check_field_types(instance: Any, label: Callable[[str], str] = lambda name: f"`{name}`"):
    """A `ValueError` naming the first field of the dataclass `instance` whose value does not
    have its annotated type (`expected_type`); `label` names a field in the message."""
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        ok, allowed = expected_type(field.type)
        if not ok(value):
            raise ValueError(
                f"{label(field.name)} must be {allowed}, got {value!r} ({type(value).__name__})."
            )

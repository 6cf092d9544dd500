"""The range checks every schema's ``__post_init__`` runs (each raises one line naming the key),
and :func:`flatten`, the dotted view of a nested config."""

from __future__ import annotations

import math
from typing import Any

from rlexp.errors import ConfigError


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as ``{"algo.lr": 0.001, ...}`` (lists become tuples, so values compare and hash)."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    if isinstance(node, list):
        return {prefix[:-1]: tuple(node)}
    return {prefix[:-1]: node}


def positive(owner: str, **values: Any) -> None:
    for name, value in values.items():
        if value is None or not 0 < value < math.inf:  # `not`: NaN fails every comparison
            raise ConfigError(f"{owner}.{name} must be {_a_finite(value)}> 0, got {value}")


def non_negative(owner: str, **values: Any) -> None:
    for name, value in values.items():
        if value is None or not 0 <= value < math.inf:
            raise ConfigError(f"{owner}.{name} must be {_a_finite(value)}>= 0, got {value}")


def finite(owner: str, **values: Any) -> None:
    for name, value in values.items():
        if not math.isfinite(value):
            raise ConfigError(f"{owner}.{name} must be a finite number, got {value}")


def _a_finite(value: Any) -> str:
    """The words a range message needs for NaN and infinities (which pass or fail ``> 0`` misleadingly)."""
    return "a finite number " if isinstance(value, float) and not math.isfinite(value) else ""


def unit_interval(owner: str, **values: Any) -> None:
    for name, value in values.items():
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{owner}.{name} must be in [0, 1], got {value}")


def one_of(owner: str, name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{owner}.{name}={value!r} is not valid; choose one of: {', '.join(map(str, choices))}")

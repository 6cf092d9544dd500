"""Published scores as data (YAML beside this file), each with its source, protocol and budget."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import yaml


@lru_cache(maxsize=None)
def load(name: str) -> dict[str, Any]:
    """``name``.yaml of this package (atari_baselines, mnih2015_dqn, rl_zoo_cartpole)."""
    return yaml.safe_load(resources.files(__name__).joinpath(f"{name}.yaml").read_text())


def human_normalized(game: str, score: float) -> float | None:
    """(score - random) / (human - random) with the 30-minute human convention; None for an unknown game."""
    entry = load("atari_baselines")["games"].get(game)
    if entry is None:
        return None
    return (score - entry["random"]) / (entry["human"] - entry["random"])

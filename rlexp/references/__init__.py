"""Published scores as data (YAML beside this file), each with its source, protocol and budget."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import yaml


@lru_cache(maxsize=None)
def load(name: str) -> dict[str, Any]:
    """``name``.yaml of this package (atari_baselines or one of :data:`PUBLISHED`)."""
    return yaml.safe_load(resources.files(__name__).joinpath(f"{name}.yaml").read_text())


# published returns, one file per source; each: source, kind (atari: scores keyed by
# env.game; gym: keyed by env.id), protocol, eval, spread, and per algorithm its budget
# (budget_frames for atari, budget_steps for gym) and scores {task: {mean, std}}
PUBLISHED = ("mnih2015_dqn", "cleanrl_atari", "rl_zoo_atari", "cleanrl_classic", "rl_zoo_classic", "tianshou_mujoco",
             "cleanrl_mujoco", "der_atari100k")


def published(kind: str, algo: str, task: str) -> list[tuple[dict[str, Any], dict[str, Any], str]]:
    """(reference file, its entry for ``algo``, the task it scored) for every source with a
    score for ``task``, or for another version of the same gymnasium task (``Hopper-v3`` for
    ``Hopper-v5``: the caller states the difference)."""
    out = []
    for name in PUBLISHED:
        ref = load(name)
        entry = ref["algos"].get(algo)
        if ref["kind"] != kind or entry is None:
            continue
        if task in entry["scores"]:
            out.append((ref, entry, task))
        elif kind == "gym":
            other = [t for t in entry["scores"] if _versionless(t) == _versionless(task)]
            if other:
                out.append((ref, entry, other[0]))
    return out


def published_aggregates(algo: str, budget_frames: int | None) -> list[dict[str, Any]]:
    """Published human-normalized aggregates over a benchmark's games for ``algo`` at
    ``budget_frames`` (e.g. DER's IQM on Atari 100k): each {source, games, iqm: {agent: value}}."""
    out = []
    for name in PUBLISHED:
        entry = load(name)["algos"].get(algo)
        if entry and "aggregates" in entry and entry.get("budget_frames") == budget_frames:
            out.append(entry["aggregates"])
    return out


def _versionless(env_id: str) -> str:
    """``Hopper-v5`` -> ``Hopper``."""
    return env_id.rsplit("-v", 1)[0]


def human_normalized(game: str, score: float) -> float | None:
    """(score - random) / (human - random) with the 30-minute human convention; None for an unknown game."""
    entry = load("atari_baselines")["games"].get(game)
    if entry is None:
        return None
    return (score - entry["random"]) / (entry["human"] - entry["random"])

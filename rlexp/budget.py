"""A run's budget and intervals, counted in its family's unit, and the config keys that set them.

Each trainer family counts its work in one unit (agent steps, games, examples, pairs,
prompts) and names, in its :class:`Budget`, the keys that set its total, its log,
evaluation and checkpoint intervals and the size of one evaluation. The lifecycle reads the
:class:`Schedule` a budget gives and knows nothing else about units; ``rlexp resume --budget
N`` sets the budget's total. A key of another family's unit is refused in one line naming
this family's key for the same role (:func:`refuse_other_units`), even when it is given at
its default value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable


@dataclass(frozen=True)
class Unit:
    """The trainer's unit of progress, as the run's files and messages name it."""

    key: str  # summary.json key of the progress count, e.g. "steps"
    one: str  # "at step 1500"
    many: str  # "1500 agent steps"


@dataclass(frozen=True)
class Schedule:
    """The run's budget and intervals, in the trainer's unit (0: only at the end)."""

    total: int  # work to do
    log_interval: int  # between aggregated metric events (> 0)
    eval_interval: int  # between evaluations; 0 evaluates only at the end
    checkpoint_interval: int  # between periodic checkpoints; 0 saves only the last


ROLES = ("total", "log_interval", "eval_interval", "checkpoint_interval", "eval_size")


@dataclass(frozen=True)
class Budget:
    """The config keys (dotted paths) that set a family's budget, each in its unit."""

    unit: Unit
    counts: str  # what the unit counts, for messages: "agent steps of gym envs"
    total: str  # the work to do: what `rlexp resume --budget N` sets
    log_interval: str
    eval_interval: str
    checkpoint_interval: str
    eval_size: str  # what one evaluation measures: episodes, games per opponent, held-out prompts or pairs

    def keys(self) -> dict[str, str]:
        """role -> config key."""
        return {role: getattr(self, role) for role in ROLES}

    def schedule(self, cfg: Any) -> Schedule:
        """The run's schedule, read from ``cfg``."""
        return Schedule(*(read(cfg, getattr(self, role)) for role in ROLES[:4]))


STEPS = Budget(Unit("steps", "step", "agent steps"), "agent steps of gym envs", "total_steps",
               "logger.log_interval_steps", "eval_interval_steps", "checkpoint_interval_steps", "eval_episodes")
GAMES = Budget(Unit("games", "game", "games"), "self-play games", "algo.total_games", "algo.log_interval_games",
               "algo.eval_interval_games", "algo.checkpoint_interval_games", "algo.eval_games")
EXAMPLES = Budget(Unit("examples", "example", "examples"), "language-model examples", "algo.total_examples",
                  "algo.log_interval_examples", "algo.eval_interval_examples", "algo.checkpoint_interval_examples",
                  "algo.eval_prompts")
PAIRS = Budget(Unit("pairs", "pair", "pairs"), "preference pairs", "algo.total_pairs", "algo.log_interval_pairs",
               "algo.eval_interval_pairs", "algo.checkpoint_interval_pairs", "algo.eval_pairs")
PROMPTS = Budget(Unit("prompts", "prompt", "prompts"), "prompts", "algo.total_prompts", "algo.log_interval_prompts",
                 "algo.eval_interval_prompts", "algo.checkpoint_interval_prompts", "algo.eval_prompts")
BUDGETS = (STEPS, GAMES, EXAMPLES, PAIRS, PROMPTS)  # every family's; the run's top level holds STEPS' keys


def read(cfg: Any, key: str) -> Any:
    """The value at the dotted ``key`` of a typed config."""
    node = cfg
    for part in key.split("."):
        node = getattr(node, part)
    return node


def given_keys(overrides: Iterable[str]) -> set[str]:
    """The keys a command's Hydra overrides set (``key=value``, ``+key=value``; not group choices
    like ``algo=dqn``, which have no dot unless they are keys at the top level)."""
    return {o.split("=", 1)[0].lstrip("+~") for o in overrides if "=" in o}


def refuse_other_units(cfg: Any, budget: Budget, algo: str, given: set[str] | None) -> None:
    """Refuse, in a run counted by ``budget``, a setting of another family's unit.

    Only the gym family's keys sit at the top of every run's config (the other families' live
    in their algorithm's section, where another algorithm's config has no such key). A key is
    refused when the command set it (``given``: the keys of its overrides, at any value) or
    when it differs from its default (a preset, or a config built in Python).

    Raises:
        ConfigError: one line naming the setting and this run's key for the same role.
    """
    from rlexp.config import LoggerConfig, TrainConfig
    from rlexp.errors import ConfigError

    if budget is STEPS:
        return
    defaults = {**{k: f.default for k, f in TrainConfig.__dataclass_fields__.items()},
                **{f"logger.{k}": f.default for k, f in LoggerConfig.__dataclass_fields__.items()}}
    for key in STEPS.keys().values():
        if key in (given or ()) or read(cfg, key) != defaults[key]:
            raise ConfigError(other_unit_message(key, STEPS, budget, algo))


def other_unit_message(key: str, other: Budget, ours: Budget, algo: str) -> str:
    """The line for ``key``, a setting of ``other``'s unit, in a run of ``algo`` counted by ``ours``."""
    role = next(r for r, k in other.keys().items() if k == key)
    what = f"counts {other.counts}" if role == "total" else f"is for runs counted in {other.counts}"
    return f"{key} {what}; algo={algo} counts {ours.unit.many}: set {ours.keys()[role]}"

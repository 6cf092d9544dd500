"""The contract between the run lifecycle and a trainer family.

A trainer does the work of one kind of learning: stepping a gymnasium vector env (DQN,
PPO, tabular methods...), self-play on a board game, or generation and updates on a
language model. The lifecycle (``rlexp.lifecycle``) owns everything a run has whatever the
family: the run directory, the sinks, the schedule, checkpoints, resume, signals and the
non-finite guard. It drives the trainer through this contract only:

- ``progress`` counts finished work in the trainer's own :class:`Unit` (agent steps, games,
  prompts); ``schedule`` says the budget and the intervals in that unit.
- ``start()`` readies the trainer after construction or after ``load_state_dict`` (reset
  envs, or bring them back to the checkpoint); ``advance()`` does one unit of work (or a
  batch of them) and returns the metrics of any learning update it made.
- ``log_metrics()``, ``evaluate()``, ``record_video()`` and ``figures()`` are what the
  lifecycle asks for when its schedule says so; it writes, logs and draws what it gets.
- ``state_dict()`` / ``load_state_dict()`` (small: weights, optimizers, counters, RNGs) and
  ``buffer_state()`` / ``load_buffer_state()`` (large: replay, rollouts) make a checkpoint.

A trainer never opens a file in the run directory, prints, or talks to a sink; it returns
numbers, figures and state. A new family is one class implementing this, and a registry
line per algorithm (``rlexp.config.ALGOS``); the lifecycle does not change.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch

from rlexp.budget import Budget, Schedule, Unit  # noqa: F401  (a trainer's unit and schedule come from its budget)


@dataclass
class Evaluation:
    """What one evaluation found: its score (higher is better) and what to log."""

    score: float  # the number the best checkpoint and a sweep's objective follow (e.g. the mean return)
    score_std: float  # its spread over the evaluation's episodes or games
    metrics: dict[str, float] = field(default_factory=dict)  # logged at this progress (eval/...)
    text: str = ""  # one line for people, e.g. "eval return 500.0 +/- 0.0 over 10 episodes"
    records: dict[str, str] = field(default_factory=dict)  # files for the run directory: relative path -> text (game records)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # tables for the sinks: key -> rows (sample answers)


class TrainerFault(Exception):
    """The trainer's work raised (e.g. an env crashed) before changing its state: the lifecycle
    checkpoints the state as it is and stops the run. ``where`` names what failed ("env 3")."""

    def __init__(self, where: str, error: BaseException):
        super().__init__(f"{where} raised {type(error).__name__}")
        self.where, self.error = where, error


class Trainer(ABC):
    """One family of learning, driven by the run lifecycle (see the module docstring)."""

    budget: ClassVar[Budget]  # the keys of its budget and intervals, in its unit (rlexp.budget)
    unit: ClassVar[Unit]  # the unit of ``progress``: its budget's
    score_name: str  # the score's name in summary.json (e.g. "eval_return": eval_return_mean, best_eval_return)
    rate_metric: str  # the metric of progress per second (e.g. "perf/sps")
    budget_key: ClassVar[str]  # the config key of ``schedule.total`` (its budget's): the one setting a resume may change
    device: torch.device  # where the networks are
    schedule: Schedule
    progress: int = 0  # work done so far, in ``unit``
    pictures_due: str | None = None  # set by advance() when pictures should be drawn now: a file-name suffix
    data_parallel: ClassVar[bool] = False  # under `accelerate launch`: shards each batch over the processes
    starts_from: ClassVar[tuple[str, ...]] = ()  # a pipeline stage: the algorithms whose exported model it may start from (model.from_run)
    scored_by: ClassVar[str | None] = None  # a pipeline stage: the algorithm whose exported model scores its answers (reward.from_run)
    eval_options: ClassVar[tuple[str, ...]] = ()  # the `rlexp eval` options its evaluate_saved takes (besides checkpoint, seed, device, trust)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "budget" in cls.__dict__:
            cls.unit, cls.budget_key = cls.budget.unit, cls.budget.total

    @classmethod
    def evaluate_saved(cls, run_dir: str, checkpoint: str, seed: int | None, device: str, trust: bool,
                       **options: Any) -> tuple[dict[str, Any], list[str]]:
        """``rlexp eval``: evaluate a saved checkpoint of a run of this family and append the
        record to ``RUN_DIR/evals.jsonl``; (the record, its lines for people). ``options`` are
        the ones ``eval_options`` names that the command was given. A family that sets no
        ``eval_options`` has no such evaluation: its in-training ones are in metrics.jsonl.

        Raises:
            ConfigError: this family has no evaluation of a saved run (the default).
        """
        from rlexp.errors import ConfigError

        raise ConfigError(f"{run_dir}: rlexp eval does not evaluate runs of this kind again; their evaluations are "
                          "in metrics.jsonl")

    @abstractmethod
    def start(self, resumed: bool) -> list[str]:
        """Ready the trainer to advance (after ``load_state_dict`` when ``resumed``).

        Returns:
            Notes for people about the start (e.g. how long restoring the envs took).
        """

    @abstractmethod
    def advance(self) -> dict[str, float]:
        """Do the next piece of work and add it to ``progress``.

        Returns:
            The metrics of a learning update made during it (``loss/...`` keys are checked to
            be finite), or an empty dict.

        Raises:
            TrainerFault: the work failed before changing the trainer's state.
        """

    @abstractmethod
    def log_metrics(self) -> dict[str, float]:
        """Training metrics aggregated since the last call (e.g. the mean episode return)."""

    @abstractmethod
    def evaluate(self, index: int) -> Evaluation:
        """The ``index``-th evaluation of the current policy (0, 1, ...; it picks its seeds)."""

    def record_video(self, path: Path, index: int) -> dict[str, float]:
        """Write one evaluation episode or game as an mp4 at ``path``; its metrics. Optional."""
        return {}

    def figures(self, final: bool) -> dict[str, Any]:
        """Matplotlib figures by name (saved as ``figures/<name>.png``); ``final`` at the run's end."""
        return {}

    def summary(self) -> dict[str, Any]:
        """Extra fields for summary.json (e.g. the evaluation protocol)."""
        return {}

    def exports(self) -> dict[str, tuple[str, Callable[[Path], None]]]:
        """Directories for the run directory at the end, by name: (what it is, for people; a
        function that writes it into the directory it is given), e.g. ``model``: the trained
        model, which the next stage loads."""
        return {}

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything to continue exactly but the buffers: tensors and plain data (``weights_only``)."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`, before :meth:`start`."""

    def buffer_state(self) -> dict[str, Any] | None:
        """Experience held for learning (replay, partial rollout); None when there is none."""
        return None

    def load_buffer_state(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`buffer_state`."""

    @abstractmethod
    def non_finite(self) -> str:
        """The name of the first state tensor holding a NaN or inf, "" when all are finite."""

    def close(self) -> None:
        """Release envs, processes and files; called once, also after a failure."""


def pipeline_links(trainer: type[Trainer], earlier: list[tuple[str, Path]]) -> dict[str, str]:
    """A pipeline stage's links to the stages before it (``earlier``: (algorithm, run dir) in
    order): ``model.from_run``, the latest one it may start from, and ``reward.from_run``, the
    latest one that scores it."""
    links = {}
    model = next((d for n, d in reversed(earlier) if n in trainer.starts_from), None)
    if model is not None:
        links["model.from_run"] = str(model)
    reward = next((d for n, d in reversed(earlier) if n == trainer.scored_by), None)
    if reward is not None:
        links["reward.from_run"] = str(reward)
    return links

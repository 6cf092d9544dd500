"""Console progress: a rich bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Column

from rlexp.loggers.base import Sink

# what the progress shows when a log event has it: (metric, label, format)
STATS = (
    ("perf/sps", "sps", "{:.0f}"),
    ("perf/games_per_s", "games/s", "{:.1f}"),
    ("perf/tokens_per_s", "tokens/s", "{:.0f}"),
    ("train/episode_return", "return", "{:.1f}"),
    ("selfplay/game_length", "length", "{:.1f}"),
    ("eval/score", "eval", "{:.4g}"),
    ("train/epsilon", "eps", "{:.3f}"),
    ("loss/td", "loss", "{:.4f}"),
    ("loss/policy", "policy loss", "{:.3f}"),
    ("loss/value", "value loss", "{:.3f}"),
    ("train/loss", "loss", "{:.4f}"),
)


class ConsoleLogger(Sink):
    """Shows progress, its rate, the last return or score, and the losses; ``mode`` is auto,
    bar, lines or none.

    ``total_steps`` is the run's budget in ``unit`` (agent steps for gym envs, games for
    board games); ``unit_one`` names one of them in the lines ("step 2000/50000"), and a log
    event holding ``rate_metric`` is a training line.
    """

    def __init__(self, mode: str, total_steps: int, description: str, console: Console | None = None,
                 unit: str = "agent steps", unit_one: str = "step", rate_metric: str = "perf/sps"):
        self.console = console or Console(stderr=False)
        if mode == "auto":
            mode = "bar" if self.console.is_terminal else "lines"
        self.mode = mode
        self.total_steps = total_steps
        self.description = description
        self.unit_one, self.rate_metric = unit_one, rate_metric
        self._last: dict[str, float] = {}
        self._progress: Progress | None = None
        if mode == "bar":
            # At any width from 80 columns the bar, the work done of the total and the time left
            # stay whole; the description and then the metrics give way (cut with an ellipsis).
            self._progress = Progress(
                TextColumn("[bold]{task.description}",
                           table_column=Column(no_wrap=True, overflow="ellipsis", max_width=28)),
                BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=10, max_width=40)),
                MofNCompleteColumn(table_column=Column(no_wrap=True)),
                TimeElapsedColumn(table_column=Column(no_wrap=True)),
                TimeRemainingColumn(table_column=Column(no_wrap=True)),
                TextColumn("{task.fields[stats]}", table_column=Column(ratio=3, no_wrap=True, overflow="ellipsis",
                                                                       min_width=0)),
                console=self.console, expand=True,
            )
            self._task = self._progress.add_task(description, total=total_steps, stats="")
            self._progress.start()
        elif mode == "lines":
            self.console.print(f"{description}: training for {total_steps} {unit}")

    def _stats(self) -> str:
        return "  ".join(f"{label} {fmt.format(self._last[key])}" for key, label, fmt in STATS if key in self._last)

    def _line(self, step: int, text: str) -> None:
        print(f"{self.unit_one} {step:>9}/{self.total_steps}  {text}", flush=True, file=sys.stdout)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self._last.update(metrics)
        if self._progress is not None:
            self._progress.update(self._task, completed=step, stats=self._stats())
        elif self.mode == "lines" and self.rate_metric in metrics:  # a training event
            self._line(step, self._stats())

    def log_evaluation(self, step: int, score: float, text: str) -> None:
        self._last["eval/score"] = score
        if self._progress is not None:
            self._progress.update(self._task, completed=step, stats=self._stats())
        elif self.mode == "lines":
            self._line(step, text)

    def message(self, text: str) -> None:
        """Always shown (``progress=none`` silences only the progress)."""
        self.console.print(text, highlight=False, soft_wrap=True)

    def end_progress(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def close(self) -> None:
        self.end_progress()

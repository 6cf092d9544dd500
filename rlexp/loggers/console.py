"""Console progress: a rich bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from rlexp.loggers.base import Sink


class ConsoleLogger(Sink):
    """Shows progress, its rate, the last return and epsilon; ``mode`` is auto, bar, lines or none.

    ``total_steps`` is the run's budget in ``unit`` (agent steps for gym envs).
    """

    def __init__(self, mode: str, total_steps: int, description: str, console: Console | None = None,
                 unit: str = "agent steps"):
        self.console = console or Console(stderr=False)
        if mode == "auto":
            mode = "bar" if self.console.is_terminal else "lines"
        self.mode = mode
        self.total_steps = total_steps
        self.description = description
        self._last: dict[str, float] = {}
        self._progress: Progress | None = None
        if mode == "bar":
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
            )
            self._task = self._progress.add_task(description, total=total_steps, stats="")
            self._progress.start()
        elif mode == "lines":
            self.console.print(f"{description}: training for {total_steps} {unit}")

    def _stats(self) -> str:
        parts = []
        for key, label, fmt in (
            ("perf/sps", "sps", "{:.0f}"),
            ("train/episode_return", "return", "{:.1f}"),
            ("eval/episode_return", "eval", "{:.1f}"),
            ("train/epsilon", "eps", "{:.3f}"),
            ("loss/td", "loss", "{:.4f}"),
        ):
            if key in self._last:
                parts.append(f"{label} {fmt.format(self._last[key])}")
        return "  ".join(parts)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self._last.update(metrics)
        if self._progress is not None:
            self._progress.update(self._task, completed=step, stats=self._stats())
        elif self.mode == "lines":
            if "perf/sps" in metrics:  # a training event
                print(f"step {step:>9}/{self.total_steps}  {self._stats()}", flush=True, file=sys.stdout)
            elif "eval/episode_return" in metrics:
                print(
                    f"step {step:>9}/{self.total_steps}  eval return {metrics['eval/episode_return']:.1f}"
                    f" +/- {metrics.get('eval/episode_return_std', float('nan')):.1f}",
                    flush=True,
                    file=sys.stdout,
                )

    def message(self, text: str) -> None:
        """Always shown (``progress=none`` silences only the progress)."""
        self.console.print(text, highlight=False, soft_wrap=True)

    def end_progress(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def close(self) -> None:
        self.end_progress()

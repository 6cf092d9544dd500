"""The one interface every sink has, and the fan-out the run lifecycle talks to.

A sink takes metrics (``log``), media (``log_image``, ``log_video``: files already written in
the run directory) and lines for people (``message``); each one does with them what it can
and ignores the rest. The lifecycle holds a :class:`Sinks` and never asks which sinks are in it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class Sink:
    """Base class: every method is a no-op unless a sink has a use for it."""

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Record scalar metrics at ``step`` (in the trainer's unit of progress)."""

    def log_evaluation(self, step: int, score: float, text: str) -> None:
        """An evaluation's score and its line for people (its metrics come through ``log``)."""

    def log_image(self, step: int, key: str, path: Path) -> None:
        """Attach a PNG already written to ``path``."""

    def log_video(self, step: int, key: str, path: Path) -> None:
        """Attach an mp4 already written to ``path``."""

    def log_table(self, step: int, key: str, rows: list[dict[str, Any]]) -> None:
        """Attach a table (rows of equal keys, e.g. sample answers)."""

    def message(self, text: str) -> None:
        """A line for people (resume notes, warnings, the closing lines)."""

    def end_progress(self) -> None:
        """Stop any live progress display, so that the lines after it read cleanly."""

    def files(self) -> dict[str, str]:
        """What this sink keeps in the run directory: {name: what it is}, for the closing lines."""
        return {}

    def resume_state(self) -> dict[str, Any]:
        """What a resumed run needs to continue this sink where it left off (e.g. a W&B run id)."""
        return {}

    def close(self) -> None:
        """Flush and release; never raises."""


class Sinks(Sink):
    """Every sink of a run, called in order."""

    def __init__(self, sinks: list[Sink]):
        self.sinks = sinks

    def log(self, step: int, metrics: dict[str, float]) -> None:
        for sink in self.sinks:
            sink.log(step, metrics)

    def log_evaluation(self, step: int, score: float, text: str) -> None:
        for sink in self.sinks:
            sink.log_evaluation(step, score, text)

    def log_image(self, step: int, key: str, path: Path) -> None:
        for sink in self.sinks:
            sink.log_image(step, key, path)

    def log_video(self, step: int, key: str, path: Path) -> None:
        for sink in self.sinks:
            sink.log_video(step, key, path)

    def log_table(self, step: int, key: str, rows: list[dict[str, Any]]) -> None:
        for sink in self.sinks:
            sink.log_table(step, key, rows)

    def message(self, text: str) -> None:
        for sink in self.sinks:
            sink.message(text)

    def end_progress(self) -> None:
        for sink in self.sinks:
            sink.end_progress()

    def files(self) -> dict[str, str]:
        return {name: what for sink in self.sinks for name, what in sink.files().items()}

    def resume_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {}
        for sink in self.sinks:
            state.update(sink.resume_state())
        return state

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()

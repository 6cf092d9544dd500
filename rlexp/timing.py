"""Where a run's time goes: wall seconds per phase, counted by laps (a few hundred ns each).

The gym family splits each agent step into ``acting`` (the policy's forward pass and
exploration), ``env`` (stepping the vector env and its bookkeeping), ``replay`` (storing the
transition, sampling minibatches, a rollout's advantages), ``update`` (the gradient steps)
and ``other`` (the lifecycle between steps: logging, evaluations, checkpoints, pictures).
``summary.json`` keeps the split as ``time_split_s``; the benches print it.
"""

from __future__ import annotations

import time


class PhaseClock:
    """``lap(phase)`` charges the wall time since the previous lap to ``phase``."""

    __slots__ = ("seconds", "_last")

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def reset(self) -> None:
        """Forget the laps so far; the next lap counts from now."""
        self.seconds = {}
        self._last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self._last
        self._last = now

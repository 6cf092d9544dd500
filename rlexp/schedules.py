"""Counting in units of progress: linear schedules and "every N" intervals, one of each for
the algorithms and the run lifecycle."""

from __future__ import annotations


def linear_schedule(start: float, end: float, duration: int, done: int) -> float:
    """Linear interpolation from ``start`` to ``end`` over ``duration`` units, then ``end``
    (``end`` throughout when ``duration`` <= 0)."""
    if duration <= 0 or done >= duration:
        return end
    return start + (end - start) * done / duration


def crossed(before: int, after: int, interval: int) -> bool:
    """Whether a multiple of ``interval`` lies in ``(before, after]``: an "every ``interval``"
    event is due after work that took the count from ``before`` to ``after``. Never for
    ``interval`` <= 0 (the setting's "never")."""
    return interval > 0 and after // interval > before // interval

"""Fault injection for the kill-and-resume tests: ``RLEXP_FAULT`` names where this process
SIGKILLs itself, as a pre-emption or an out-of-memory kill would.

``RLEXP_FAULT=step:1500`` kills the training loop once it reaches agent step 1500;
``RLEXP_FAULT=checkpoint_write:2`` kills in the middle of the 2nd checkpoint file write
(its bytes written, not yet renamed). Unset (always, outside tests), every check is a dict
lookup.
"""

from __future__ import annotations

import os
import signal

_FAULTS: dict[str, int] | None = None


def _faults() -> dict[str, int]:
    global _FAULTS
    if _FAULTS is None:
        _FAULTS = {}
        for item in filter(None, os.environ.get("RLEXP_FAULT", "").split(",")):
            name, _, value = item.partition(":")
            _FAULTS[name] = int(value or 1)
    return _FAULTS


def fault(point: str) -> None:
    """Count one pass through ``point``; SIGKILL on the configured pass."""
    faults = _faults()
    if point in faults:
        faults[point] -= 1
        if faults[point] == 0:
            kill()


def kill_step() -> int | None:
    """The agent step at which the loop must SIGKILL itself (``RLEXP_FAULT=step:N``), or None."""
    return _faults().get("step")


def kill() -> None:
    """SIGKILL this process, as a pre-emption or an out-of-memory kill would."""
    os.kill(os.getpid(), signal.SIGKILL)

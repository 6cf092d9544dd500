"""Process-wide run state the lifecycle saves or guards: the global RNGs, the metrics file cut
back to a checkpoint, and the signal handling that stops a run at a checkpoint."""

from __future__ import annotations

import json
import os
import random
import signal
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlexp.checkpoint import atomic_write


class GracefulStop:
    """SIGINT/SIGTERM handlers for the loop: the first signal asks for a checkpoint and a clean
    stop at the end of the current step; a second one exits at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._saved: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            os.write(2, f"\n{signal.Signals(signum).name} again: exiting now, without a checkpoint\n".encode())
            os._exit(128 + signum)
        self.signum = signum
        os.write(2, f"\n{signal.Signals(signum).name}: saving a checkpoint, then stopping "
                    "(send it again to exit at once)\n".encode())

    def __enter__(self) -> "GracefulStop":
        for sig in self.SIGNALS:
            try:
                self._saved[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. a launcher's worker thread): no handlers
                pass
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)


def rng_state() -> dict[str, Any]:
    """Python's, numpy's global and torch's (CPU and CUDA) generators, as plain data and tensors."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def truncate_metrics(path: Path, step: int) -> None:
    """Keep the rows of ``metrics.jsonl`` up to agent step ``step`` (a resumed run writes the
    rest again): no row duplicated, none missing, no half-written line."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True):
        if not line.endswith("\n"):
            break  # the half-written last line of a killed run
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if row.get("step", 0) <= step:
            kept.append(line)
    data = "".join(kept).encode("utf-8")
    atomic_write(path, lambda f: f.write(data))

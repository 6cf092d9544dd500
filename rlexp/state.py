"""What a training run's state is made of, besides the algorithm's: the loop's bookkeeping,
the global RNGs, the envs' action log (replayed to restore them), the metrics file cut back
to a checkpoint, and the signal handling that stops a run at a checkpoint."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch


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


class ActionLog:
    """Every vector step's actions since the first reset: replaying them from the same seed
    rebuilds every training env's exact state on resume (envs keep no state that can be saved
    as plain data, but gymnasium's and ALE's envs are deterministic given seed and actions)."""

    def __init__(self, action_space: gym.Space):
        self.env_dtype = np.dtype(action_space.dtype)  # what envs.step takes back (ALE insists on int32/int64)
        if isinstance(action_space, gym.spaces.Discrete):
            n = int(action_space.start) + int(action_space.n)
            self.dtype = np.uint8 if n <= 256 else np.int32
        else:
            self.dtype = np.dtype(action_space.dtype)
        self._blocks: list[np.ndarray] = []  # (steps, num_envs, ...) arrays, oldest first
        self._pending: list[np.ndarray] = []  # single steps not yet stacked into a block
        self._steps = 0

    def append(self, actions: np.ndarray) -> None:
        self._pending.append(actions.astype(self.dtype))  # a copy, in the compact dtype
        self._steps += 1

    def __len__(self) -> int:
        return self._steps

    def tensor(self) -> torch.Tensor:
        """All steps as one (steps, num_envs, ...) tensor."""
        if self._pending:
            self._blocks.append(np.stack(self._pending))
            self._pending = []
        if len(self._blocks) > 1:
            self._blocks = [np.concatenate(self._blocks)]
        return torch.from_numpy(self._blocks[0]) if self._blocks else torch.zeros(0)

    def load(self, saved: torch.Tensor) -> None:
        self._blocks = [saved.numpy().astype(self.dtype)] if len(saved) else []
        self._pending = []
        self._steps = len(saved)


def obs_digest(obs: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(obs).tobytes()).hexdigest()


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


@dataclass
class LoopState:
    """The loop's bookkeeping: what a resume must restore besides the algorithm and the envs."""

    step: int = 0
    episodes: int = 0
    eval_index: int = 0  # evaluations made (each one's env seeds derive from it)
    ep_return: list[float] = dataclasses.field(default_factory=list)  # per env, the running episode's
    ep_length: list[int] = dataclasses.field(default_factory=list)
    window_returns: list[float] = dataclasses.field(default_factory=list)  # episodes since the last log row
    window_lengths: list[int] = dataclasses.field(default_factory=list)
    last_update: dict[str, float] = dataclasses.field(default_factory=dict)
    best_eval_return: float = -float("inf")
    best_eval_step: int = 0
    curve_train: list[list[float]] = dataclasses.field(default_factory=list)  # (step, mean training return)
    curve_eval: list[list[float]] = dataclasses.field(default_factory=list)  # (step, eval mean, eval std)
    eval_mean: float = float("nan")
    eval_std: float = float("nan")
    wall_s: float = 0.0  # wall time of earlier sessions of this run
    side_s: float = 0.0  # of which evaluations, checkpoints and pictures
    obs_digest: str = ""  # SHA-256 of the observation the next step acts on (checks the env replay)
    wandb_id: str | None = None


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
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(kept), encoding="utf-8")
    os.replace(tmp, path)

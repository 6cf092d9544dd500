"""Checkpoints: written to a temporary file, fsynced, then renamed, so none is ever half-written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

LATEST = "latest.pt"
BEST = "best.pt"


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to ``path`` through a temporary file in the same directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(checkpoint_dir: Path, state: dict[str, Any], step: int, periodic: bool) -> Path:
    """Write ``latest.pt`` (and ``step_<N>.pt`` when ``periodic``); return the latest path."""
    checkpoint_dir = Path(checkpoint_dir)
    if periodic:
        save_atomic(state, checkpoint_dir / f"step_{step:010d}.pt")
    latest = checkpoint_dir / LATEST
    save_atomic(state, latest)
    return latest


def save_best_checkpoint(checkpoint_dir: Path, state: dict[str, Any]) -> Path:
    """Write ``best.pt``: the state at the best evaluation so far."""
    path = Path(checkpoint_dir) / BEST
    save_atomic(state, path)
    return path


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint without executing code from it (``weights_only=True``)."""
    return torch.load(Path(path), map_location=map_location, weights_only=True)

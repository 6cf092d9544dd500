"""Weights & Biases sink. Offline by default: its files, cache and settings stay in the run dir."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rlexp.config import WandbConfig

# W&B reads these at init; pointing them into the run dir keeps a run self-contained
# (and keeps tests from writing into the user's home).
_DIR_VARS = ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR")


class WandbLogger:
    """Logs aggregated metrics (never per step) and the resolved config to a W&B run."""

    def __init__(self, cfg: WandbConfig, run_dir: Path, config: dict[str, Any], group: str | None):
        import wandb  # imported here: ~1 s, and only needed when W&B is on

        self._wandb = wandb
        run_dir = Path(run_dir).resolve()  # absolute: a W&B service shared with another process has its own cwd
        saved = {k: os.environ.get(k) for k in (*_DIR_VARS, "WANDB_SILENT")}
        os.environ["WANDB_SILENT"] = "true"
        if cfg.mode == "offline":
            for var in _DIR_VARS:
                os.environ[var] = str(run_dir / "wandb" / var.removeprefix("WANDB_").removesuffix("_DIR").lower())
        try:
            self.run = wandb.init(
                mode=cfg.mode,
                project=cfg.project,
                entity=cfg.entity,
                group=cfg.group or group,
                tags=list(cfg.tags) or None,
                name=cfg.name or run_dir.name,
                dir=str(run_dir),
                config=config,
                reinit="create_new",
                settings=wandb.Settings(console="off", silent=True, x_disable_stats=True),
            )
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        self.run.define_metric("*", step_metric="step")

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.run.log({"step": step, **metrics})

    def log_video(self, step: int, key: str, path: Path) -> None:
        """Attach an mp4 (a file W&B copies; no re-encoding)."""
        self.run.log({"step": step, key: self._wandb.Video(str(path), format="mp4")})

    def log_image(self, step: int, key: str, path: Path) -> None:
        """Attach a PNG as a W&B image."""
        self.run.log({"step": step, key: self._wandb.Image(str(path))})

    def close(self) -> None:
        self.run.finish()

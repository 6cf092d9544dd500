"""Weights & Biases sink. Offline by default: its files, cache and settings stay in the run dir.

W&B is never the only record (metrics.jsonl and the console get every metric too), so W&B
trouble never stops training: a failed online start falls back to an offline run, and any
other failure warns once and turns this sink into a no-op.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from rlexp.config import WandbConfig
from rlexp.errors import describe, warn
from rlexp.loggers.base import Sink

# W&B reads these at init; pointing them into the run dir keeps a run self-contained
# (and keeps tests from writing into the user's home).
_DIR_VARS = ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR")

# Online init waits this long for the W&B server (its default is 90 s, with retries):
# without a network, training should fall back to offline soon, not hang for minutes.
ONLINE_INIT_TIMEOUT_S = 30.0


def _describe(exc: BaseException) -> str:
    """One short line naming an exception (W&B messages can be long)."""
    text = describe(exc)
    return text if len(text) <= 200 else text[:197] + "..."


class WandbLogger(Sink):
    """Logs aggregated metrics (never per step) and the resolved config to a W&B run.

    ``run_id`` continues that W&B run (a resumed training run); ``self.run_id`` is this run's
    id, or None when W&B could not start at all (then every method is a no-op).
    """

    def __init__(
        self,
        cfg: WandbConfig,
        run_dir: Path,
        config: dict[str, Any],
        group: str | None,
        run_id: str | None = None,
    ):
        import wandb  # imported here: ~1 s, and only needed when W&B is on

        self._wandb = wandb
        self.run: Any = None  # the W&B run; None when W&B could not start
        self._on = False  # False once W&B failed: every call is then a no-op
        self._warned = False
        self._closed = False
        run_dir = Path(run_dir).resolve()  # absolute: a W&B service shared with another process has its own cwd
        init_args = dict(
            project=cfg.project,
            entity=cfg.entity,
            group=cfg.group or group,
            tags=list(cfg.tags) or None,
            name=cfg.name or run_dir.name,
            dir=str(run_dir),
            config=config,
            reinit="create_new",
            # "allow": continue run_id if W&B has it, else start it under that id
            **({"id": run_id, "resume": "allow"} if run_id else {}),
        )
        sync_hint = f"wandb sync {run_dir / 'wandb'}/offline-run-* uploads it later"
        off_hint = "W&B logging is off for this run (metrics.jsonl and the console have every metric)"
        try:
            self.run = self._start(cfg.mode, run_dir, init_args)
        except Exception as exc:  # noqa: BLE001 - any W&B failure must not stop training
            if cfg.mode != "online":
                self._warn_once(f"W&B {cfg.mode} failed ({_describe(exc)}); {off_hint}")
                return
            # Typical: no API key (UsageError in a non-interactive process) or no network
            # (CommError / timeout). An offline run keeps the W&B record; sync uploads it later.
            try:
                self.run = self._start("offline", run_dir, init_args)
            except Exception as exc2:  # noqa: BLE001
                self._warn_once(
                    f"W&B online failed ({_describe(exc)}) and offline failed too ({_describe(exc2)}); {off_hint}"
                )
                return
            self._warn_once(
                f"W&B online failed ({_describe(exc)}); logging to an offline W&B run instead ({sync_hint})"
            )
        self._on = True
        self._guard("setup", lambda: self.run.define_metric("*", step_metric="step"))

    @property
    def run_id(self) -> str | None:
        """The W&B run's id (pass it back as ``run_id`` to continue the run), or None without one."""
        return None if self.run is None else self.run.id

    def _start(self, mode: str, run_dir: Path, init_args: dict[str, Any]) -> Any:
        """``wandb.init`` in ``mode``; offline keeps W&B's dirs inside the run dir."""
        wandb = self._wandb
        saved = {k: os.environ.get(k) for k in (*_DIR_VARS, "WANDB_SILENT")}
        os.environ["WANDB_SILENT"] = "true"
        if mode == "offline":
            for var in _DIR_VARS:
                os.environ[var] = str(run_dir / "wandb" / var.removeprefix("WANDB_").removesuffix("_DIR").lower())
        timeout = {"init_timeout": ONLINE_INIT_TIMEOUT_S} if mode == "online" else {}
        try:
            return wandb.init(
                mode=mode,
                settings=wandb.Settings(console="off", silent=True, x_disable_stats=True, **timeout),
                **init_args,
            )
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def _warn_once(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            warn(message)

    def _guard(self, action: str, call: Callable[[], Any]) -> None:
        """Run a W&B call; on any error warn once and turn the sink off (never raise)."""
        if not self._on:
            return
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - e.g. OSError ENOSPC: W&B's disk is full
            self._on = False
            self._warn_once(
                f"W&B {action} failed ({_describe(exc)}); W&B logging is off for the rest of this run "
                "(metrics.jsonl still has every metric)"
            )

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self._guard("log", lambda: self.run.log({"step": step, **metrics}))

    def log_video(self, step: int, key: str, path: Path) -> None:
        """Attach an mp4 (a file W&B copies; no re-encoding)."""
        self._guard("video log", lambda: self.run.log({"step": step, key: self._wandb.Video(str(path), format="mp4")}))

    def log_image(self, step: int, key: str, path: Path) -> None:
        """Attach a PNG as a W&B image."""
        self._guard("image log", lambda: self.run.log({"step": step, key: self._wandb.Image(str(path))}))

    def log_table(self, step: int, key: str, rows: list[dict[str, Any]]) -> None:
        """Attach rows as a W&B table (its columns: the first row's keys)."""
        if not rows:
            return
        columns = list(rows[0])

        def log() -> None:
            table = self._wandb.Table(columns=columns, data=[[row.get(c) for c in columns] for row in rows])
            self.run.log({"step": step, key: table})

        self._guard("table log", log)

    def files(self) -> dict[str, str]:
        return {"wandb/": "the W&B run (`wandb sync` uploads an offline run)"} if self.run is not None else {}

    def resume_state(self) -> dict[str, Any]:
        return {"wandb_id": self.run_id} if self.run_id else {}

    def close(self) -> None:
        """Finish the run, also after a failure (it flushes what was logged); never raises."""
        if self.run is None or self._closed:
            return
        self._closed = True
        self._on = True  # finish even a run turned off by an earlier failure
        self._guard("finish", self.run.finish)
        self._on = False

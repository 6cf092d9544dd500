"""Metric sinks: metrics.jsonl always, the console and W&B as the logger config says.

The run lifecycle builds them with :func:`make_sinks` and talks to the :class:`Sinks` it gets
through the :class:`Sink` interface only; none of them is on the hot path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlexp.config import LoggerConfig
from rlexp.loggers.base import Sink, Sinks
from rlexp.loggers.console import ConsoleLogger
from rlexp.loggers.jsonl import JsonlLogger
from rlexp.loggers.wandb import WandbLogger

METRICS_FILE = "metrics.jsonl"


def make_sinks(cfg: LoggerConfig, run_dir: Path, config: dict[str, Any], *, title: str, total: int, unit: str,
               unit_one: str, rate_metric: str, group: str | None = None,
               resume_state: dict[str, Any] | None = None) -> Sinks:
    """The run's sinks: ``metrics.jsonl`` in ``run_dir``, the console, and W&B unless disabled.

    ``title`` names the run on the console, ``total`` is its budget in ``unit`` (e.g. agent
    steps; ``unit_one``: one of them) and ``rate_metric`` the metric of its progress per
    second; ``resume_state`` is what :meth:`Sinks.resume_state` returned before a resume.
    """
    resume_state = resume_state or {}
    console = ConsoleLogger(cfg.progress, total, title, unit=unit, unit_one=unit_one, rate_metric=rate_metric)
    sinks: list[Sink] = [JsonlLogger(Path(run_dir) / METRICS_FILE), console]
    try:
        if cfg.wandb.mode != "disabled":
            sinks.append(WandbLogger(cfg.wandb, run_dir, config, group, run_id=resume_state.get("wandb_id")))
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return Sinks(sinks)


__all__ = ["ConsoleLogger", "JsonlLogger", "METRICS_FILE", "Sink", "Sinks", "WandbLogger", "make_sinks"]

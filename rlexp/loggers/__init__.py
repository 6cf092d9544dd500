"""Metric sinks. The loop calls ``log(step, metrics)`` on each; none of them is on the hot path."""

from rlexp.loggers.console import ConsoleLogger
from rlexp.loggers.jsonl import JsonlLogger
from rlexp.loggers.wandb import WandbLogger

__all__ = ["ConsoleLogger", "JsonlLogger", "WandbLogger"]

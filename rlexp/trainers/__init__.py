"""Trainer families, each driven by the run lifecycle through ``base.Trainer``: ``gym`` (an
algorithm stepping a gymnasium vector env). The registry (``rlexp.config.ALGOS``) says which
family trains each algorithm."""

from rlexp.trainers.base import Evaluation, Schedule, Trainer, TrainerFault, Unit

__all__ = ["Evaluation", "Schedule", "Trainer", "TrainerFault", "Unit"]

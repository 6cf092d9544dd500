"""Trainer families, each driven by the run lifecycle through ``base.Trainer``: ``gym`` (an
algorithm stepping a gymnasium vector env), ``selfplay`` (AlphaZero on board games), ``lm``
(pretraining, SFT, reward models), ``rlhf`` (RL from a reward model) and ``dpo`` (learning
from preference pairs). The registry (``rlexp.config.ALGOS``) says which
family trains each algorithm."""

from rlexp.trainers.base import Evaluation, Schedule, Trainer, TrainerFault, Unit

__all__ = ["Evaluation", "Schedule", "Trainer", "TrainerFault", "Unit"]

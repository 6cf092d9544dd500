"""The contract between the RL stage of a language model and its algorithm.

The trainer (:class:`rlexp.trainers.rlhf.PolicyOptimizationTrainer`) owns everything an
RL-from-feedback run has whatever the algorithm: the prompts, the sampled answers, the
reward model's scores, the reference model and the per-token log-probabilities under it,
minibatches, the optimizer step, evaluation and state. An algorithm owns what makes it
itself: the advantages of a rollout, and the loss of a minibatch. Adding one is a file here
with a subclass of :class:`LanguageModelRL`, its schema and an ``ALGOS`` line in
``rlexp.config``, and its YAML.

Shapes: ``(answers, tokens)`` for per-token tensors, ``mask`` 1 on answer tokens
(left-aligned: an answer's tokens first, then padding), ``(answers,)`` for per-answer ones.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch


@dataclass
class Rollout:
    """One rollout, as the algorithm sees it when it computes the advantages."""

    mask: torch.Tensor  # (N, T) float, 1 on answer tokens
    logprobs: torch.Tensor  # (N, T) log p of each token under the policy that sampled it
    ref_logprobs: torch.Tensor  # (N, T) ... under the reference (the SFT model)
    values: torch.Tensor | None  # (N, T) the value head's estimates, for an algorithm with one
    scores: torch.Tensor  # (N,) the reward model's score, less the penalty of an answer that never ended


@dataclass
class Minibatch:
    """One minibatch of a rollout, as the algorithm sees it when it computes the loss."""

    mask: torch.Tensor  # (n, T) bool, answer tokens
    logprobs: torch.Tensor  # (n, T) log p under the policy now (with gradient)
    old_logprobs: torch.Tensor  # (n, T) ... under the policy that sampled the rollout
    ref_logprobs: torch.Tensor  # (n, T) ... under the reference
    values: torch.Tensor | None  # (n, T) the value head now (with gradient)
    old_values: torch.Tensor | None  # (n, T) the value head at the rollout
    advantages: torch.Tensor  # (n, T)
    returns: torch.Tensor | None  # (n, T) the value head's targets


class LanguageModelRL(ABC):
    """An RL algorithm on a language model's answers: advantages, and a loss to minimize.

    ``value_head`` is a module on the policy's last hidden state for an algorithm that
    learns values (the trainer runs it and gives its output in :class:`Rollout` and
    :class:`Minibatch`), or None. ``kl_coef`` is the trainer's: fixed, or steered towards
    ``algo.kl_target`` by the KL it measures.
    """

    value_head: torch.nn.Module | None = None
    DEVICE_SETTINGS: ClassVar[tuple[str, ...]] = ()  # device.amp, compile, replay: none (the trainer refuses them)

    def __init__(self, cfg: Any, hidden_size: int, device: torch.device):
        self.cfg = cfg

    @abstractmethod
    def advantages(self, rollout: Rollout, kl_coef: float) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(advantages ``(N, T)``, 0 on padding; the value head's targets, or None)."""

    @abstractmethod
    def loss(self, batch: Minibatch, kl_coef: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(the loss to minimize, its parts to log by name: ``loss/policy``, ...)."""

    def parameters(self) -> list[torch.nn.Parameter]:
        """The algorithm's own trainable parameters (the value head's), beside the policy's."""
        return list(self.value_head.parameters()) if self.value_head is not None else []

    def state_dict(self) -> dict[str, Any]:
        return self.value_head.state_dict() if self.value_head is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.value_head is not None:
            self.value_head.load_state_dict(state)

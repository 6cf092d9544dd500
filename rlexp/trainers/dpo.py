"""``dpo``: Direct Preference Optimization (Rafailov et al. 2023) on preference pairs, counted
in pairs. No reward model and no sampling during training: each step reads a batch of
(prompt, chosen, rejected) pairs, the policy's and the reference's log-probabilities of both
answers (summed over the answer's tokens; averaged for IPO, as TRL does), and takes a step of
AdamW on :func:`rlexp.lm.rlhf.dpo_loss`.

The reference is the starting (SFT) model: with LoRA the policy with its adapters disabled
(``peft``'s ``disable_adapter()``), no second copy; with full fine-tuning, a frozen copy. The
reference's log-probabilities of a pair never change, so each is computed once and kept (the
dataset repeats in new orders: later passes read the cache), ``algo.reference_batch_pairs``
upcoming pairs at a time (TRL's ``precompute_ref_log_probs``, without a pass over pairs the
run never reads); the cache is part of the checkpoint, so a resumed run reads the same numbers.

Evaluation measures what the RL stages measure (:class:`ReferenceEvaluation`: gold, KL to the
SFT model, sampled and greedy; the reward too when ``reward.from_run`` names a reward model),
so DPO and RL sit on one gold-vs-KL figure, plus DPO's own numbers on held-out pairs under
TRL's names (``eval/rewards/accuracies``, ...).
"""

from __future__ import annotations

import copy
import dataclasses
from collections import defaultdict
from typing import Any

import numpy as np
import torch

from rlexp.budget import PAIRS
from rlexp.config import TrainConfig
from rlexp.lm.rlhf import dpo_loss
from rlexp.lm.sampling import token_logprobs
from rlexp.lm.task import Pair
from rlexp.trainers.base import Evaluation
from rlexp.trainers.lm import TextStageTrainer
from rlexp.trainers.reference import PolicyPass, ReferenceEvaluation, load_reward_model

REWARD_KEYS = ("chosen", "rejected", "margins", "accuracies")  # TRL's rewards/* metrics


class DPOTrainer(ReferenceEvaluation, TextStageTrainer):
    budget = PAIRS
    starts_from = ("sft", "pretrain")
    rate_metric = "perf/pairs_per_s"
    score_name = "eval_gold"
    loss_metric = "loss/dpo"
    dataset_key = "algo.dataset_pairs"
    data_kind = "pairs"

    def __init__(self, cfg: TrainConfig, device: torch.device):
        super().__init__(cfg, device)
        a = cfg.algo
        # full fine-tuning: the reference is a frozen copy of the starting model (taken before any step)
        self.reference = None if self.lora else copy.deepcopy(self.model).eval().requires_grad_(False)
        base = self.model.get_base_model() if self.lora else self.model
        self.policy_pass = PolicyPass(base.get_decoder(), base.get_output_embeddings(), None, a.temperature)
        self.reference_pass = (None if self.reference is None else PolicyPass(
            self.reference.get_decoder(), self.reference.get_output_embeddings(), None, a.temperature))
        self.reward_model = None  # optional: only the evaluations' reward uses it
        if cfg.reward is not None and (cfg.reward.from_run or cfg.reward.name_or_path):
            self.reward_model = load_reward_model(cfg.reward, self.tokenizer, "reward_model").to(self.device)
        if self.task.has_gold:  # the RL stages' held-out prompts
            self.heldout_prompts = self.task.prompts(a.eval_prompts, np.random.default_rng([cfg.seed, 1]))
        else:  # the user's pairs: the held-out pairs' prompts; no gold, so scored by the held-out accuracy
            self.heldout_prompts = list(dict.fromkeys(p.prompt for p in self.heldout))[:a.eval_prompts]
            self.score_name = "eval_pair_accuracy"
        self.ref_cache: dict[tuple[str, str, str], tuple[float, float]] = {}  # pair -> reference log p (chosen, rejected)
        self._position_of = self._positions_for = self._dataset_index = None  # where each pair sits in this pass's order
        self.stats: dict[str, list[float]] = defaultdict(list)
        self._init_reference_evaluation()

    def _dataset(self, count: int, rng: np.random.Generator) -> list[Pair]:
        return self.task.preference_pairs(count, rng)

    # ------------------------------------------------------------------ the loss

    def _answer_logps(self, batch: dict[str, torch.Tensor], run: Any) -> torch.Tensor:
        """Each answer's log-probability under ``run`` (summed over its tokens; IPO: averaged)."""
        logits = run(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                     position_ids=batch["position_ids"], use_cache=False).logits[:, :-1]
        targets = batch["labels"][:, 1:]
        learn = targets != -100
        logps = (token_logprobs(logits, targets.clamp(min=0)) * learn).sum(1)
        return logps / learn.sum(1) if self.cfg.algo.loss == "ipo" else logps

    @torch.no_grad()
    def _reference_logps(self, pairs: list[Pair], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The reference's log-probabilities of the batch's answers (chosen ones, then rejected
        ones), read from the cache; a batch with a pair not seen before is computed and cached."""
        keys = [(p.prompt, p.chosen, p.rejected) for p in pairs]
        if any(k not in self.ref_cache for k in keys):
            training = self.model.training
            self.model.eval()
            if self.reference is not None:
                logps = self._answer_logps(batch, self.reference)
            else:
                with self.model.disable_adapter():
                    logps = self._answer_logps(batch, self.model)
            self.model.train(training)
            n, values = len(pairs), logps.tolist()
            for k, key in enumerate(keys):
                self.ref_cache.setdefault(key, (values[k], values[n + k]))
        values = torch.tensor([self.ref_cache[k] for k in keys], dtype=torch.float32, device=self.device)
        return torch.cat([values[:, 0], values[:, 1]])

    def _pair_loss(self, pairs: list[Pair], run: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        """(the loss of each pair, TRL's rewards/* and logps/* per pair, tokens read)."""
        a = self.cfg.algo
        batch = self._encode([(p.prompt, p.chosen) for p in pairs] + [(p.prompt, p.rejected) for p in pairs])
        logps = self._answer_logps(batch, run)
        ref = self._reference_logps(pairs, batch)
        n = len(pairs)
        per_pair, rewards = dpo_loss(logps[:n], logps[n:], ref[:n], ref[n:], a.beta, a.loss, a.label_smoothing)
        parts = {f"rewards/{k}": v for k, v in rewards.items()}
        parts.update({"logps/chosen": logps[:n].detach(), "logps/rejected": logps[n:].detach()})
        return per_pair, parts, int(batch["attention_mask"].sum())

    def _prefetch_reference(self, items: list[Pair]) -> None:
        """Compute the reference's log-probabilities of the pairs near the batch's uncached ones
        in the visiting order, ``algo.reference_batch_pairs`` at a time: each pair still once,
        in fewer, larger passes of the model. The chunks are fixed stretches of the pass's
        order, so a resumed run computes the same ones."""
        size = self.cfg.algo.reference_batch_pairs
        missing = [p for p in items if (p.prompt, p.chosen, p.rejected) not in self.ref_cache]
        if not missing or size <= 1 or self.parallel.world > 1:  # data parallel: each process its own share
            return
        if self._position_of is None or self._positions_for is not self.order:
            index = {id(pair): i for i, pair in enumerate(self.examples)}
            at = np.empty(len(self.order), dtype=np.int64)
            at[self.order] = np.arange(len(self.order))
            self._position_of, self._positions_for, self._dataset_index = at, self.order, index
        chunks = sorted({int(self._position_of[self._dataset_index[id(p)]]) // size for p in missing})
        for chunk in chunks:
            ahead = [self.examples[i] for i in self.order[chunk * size:(chunk + 1) * size]]
            ahead = [p for p in ahead if (p.prompt, p.chosen, p.rejected) not in self.ref_cache]
            for start in range(0, len(ahead), size):
                part = ahead[start:start + size]
                batch = self._encode([(p.prompt, p.chosen) for p in part] + [(p.prompt, p.rejected) for p in part])
                self._reference_logps(part, batch)

    def _loss(self, items: list) -> tuple[torch.Tensor, int]:
        self._prefetch_reference(items)
        per_pair, parts, tokens = self._pair_loss(items, self.step_model)
        self._parts = {k: float(v.mean()) for k, v in parts.items()}
        return per_pair.mean(), tokens

    def advance(self) -> dict[str, float]:
        out = super().advance()
        for key, value in self._parts.items():
            self.stats[key].append(self.parallel.mean(value))
        return out

    def log_metrics(self) -> dict[str, float]:
        metrics = super().log_metrics()
        metrics.update({k: float(np.mean(v)) for k, v in self.stats.items()})
        self.stats = defaultdict(list)
        return metrics

    # ------------------------------------------------------------------ evaluation

    def start(self, resumed: bool) -> list[str]:
        kind = "LoRA; the reference is the policy with its adapters off" if self.lora else \
            "every weight; the reference is a frozen copy"
        return [f"dpo ({self.cfg.algo.loss} loss, beta {self.cfg.algo.beta}) from {self.source}: "
                f"{self.trainable:,} of {self.total_params:,} parameters train ({kind})"]

    @torch.no_grad()
    def evaluate(self, index: int) -> Evaluation:
        evaluation = ReferenceEvaluation.evaluate(self, index)
        self.model.eval()
        losses, parts = [], defaultdict(list)
        for i in range(0, len(self.heldout), 64):
            per_pair, batch_parts, _ = self._pair_loss(self.heldout[i:i + 64], self.model)
            losses.append(per_pair)
            for key, value in batch_parts.items():
                parts[key].append(value)
        pair_metrics = {"eval/loss": float(torch.cat(losses).mean()),
                        **{f"eval/{k}": float(torch.cat(v).mean()) for k, v in parts.items()}}
        evaluation.metrics.update(pair_metrics)
        self.last_eval["pair_accuracy"] = accuracy = pair_metrics["eval/rewards/accuracies"]
        if not self.task.has_gold:  # the user's pairs: scored by how often the implicit reward agrees with them
            evaluation = dataclasses.replace(evaluation, score=accuracy, score_std=float(
                torch.cat(parts["rewards/accuracies"]).std(unbiased=False)))
        evaluation.text += (f"; held-out pairs: implicit reward right on {pair_metrics['eval/rewards/accuracies']:.3f}, "
                            f"margin {pair_metrics['eval/rewards/margins']:.3f}")
        return evaluation

    def summary(self) -> dict[str, Any]:
        reward_run = (self.cfg.reward.from_run or self.cfg.reward.name_or_path) if self.cfg.reward is not None else None
        return {**super().summary(), "reward_run": reward_run, **self._reference_summary()}

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        keys = list(self.ref_cache)
        return {**super().state_dict(), **self._reference_state(), "stats": dict(self.stats),
                "ref_cache_keys": [list(k) for k in keys],
                "ref_cache_logps": torch.tensor([self.ref_cache[k] for k in keys], dtype=torch.float64)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._load_reference_state(state)
        self.stats = defaultdict(list, {k: list(v) for k, v in state["stats"].items()})
        values = state["ref_cache_logps"].tolist()
        self.ref_cache = {tuple(k): tuple(v) for k, v in zip(state["ref_cache_keys"], values)}

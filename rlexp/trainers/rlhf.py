"""RLHF's last stage: the policy learns from the reward model's scores, held near the SFT
model by a per-token KL to it. The trainer owns what every such algorithm needs; the
algorithm (``algo.name``: a class of :mod:`rlexp.algos.lm_rl`'s contract, e.g. ``rlhf_ppo``
with a value head, Ziegler et al. 2019; Ouyang et al. 2022; ``grpo``, group-relative
advantages and no critic, Shao et al. 2024; or ``rloo``, leave-one-out advantages of the
KL-penalised reward, Ahmadian et al. 2024) owns its advantages and its loss.

One rollout: ``algo.batch_prompts`` prompts of the task, each answered
``algo.samples_per_prompt`` times by sampling the policy (:func:`rlexp.lm.sampling.generate`);
the reward model scores each answer (less ``algo.missing_eos_penalty`` when it never ended);
the policy, the reference and (for an algorithm with one) the value head read every answer
once more to give the old log-probabilities, the reference's and the values. The algorithm
turns them into advantages; then ``algo.update_epochs`` passes of minibatches, each a step
of AdamW on the algorithm's loss.

The reference is the SFT model: with LoRA it is the policy with its adapters disabled
(``peft``'s ``disable_adapter()``), no second copy; with full fine-tuning, a frozen copy.
At the first update the policy is the reference, so the KL is exactly 0.

Because the task's labeler is known, each evaluation reports the gold utility of the
policy's answers beside the reward model's score and the KL to the SFT model, and the SFT
model's gold on the same prompts (``eval/sft_gold``): over-optimization is visible as gold
falling while the reward rises. Each is measured twice: on one sampled answer per prompt
(what the policy does, at ``algo.temperature``) and on the greedy answer (``*_greedy``: what
it knows). A policy whose sampled gold rises towards its SFT model's greedy gold may only
have sharpened its distribution; greedy gold above the SFT model's is learning.
"""

from __future__ import annotations

import copy
import time
from collections import defaultdict
from typing import Any

import numpy as np
import torch

from rlexp.algos.lm_rl import Minibatch, Rollout
from rlexp.budget import PROMPTS
from rlexp.build import algorithm_class
from rlexp.config import TrainConfig
from rlexp.errors import ConfigError
from rlexp.lm.model import add_lora, parameter_counts
from rlexp.lm.parallel import DataParallel
from rlexp.lm.rlhf import AdaptiveKLController
from rlexp.lm.sampling import token_logprobs
from rlexp.trainers.base import Trainer
from rlexp.trainers.lm import check_lm_run, model_exports, seed_from, stage_model, text_source
from rlexp.trainers.reference import PolicyPass, ReferenceEvaluation, load_reward_model


class PolicyOptimizationTrainer(ReferenceEvaluation, Trainer):
    """``rlhf_ppo``, ``grpo`` and ``rloo`` on the language task; progress counts prompts."""

    budget = PROMPTS
    data_parallel = True
    starts_from = ("sft", "pretrain")
    scored_by = "reward_model"
    rate_metric = "perf/prompts_per_s"
    score_name = "eval_gold"

    def __init__(self, cfg: TrainConfig, device: torch.device):
        a = cfg.algo
        check_lm_run(cfg)
        if cfg.reward is None or not (cfg.reward.from_run or cfg.reward.name_or_path):
            raise ConfigError(f"algo={a.name} learns from a reward model: set reward.from_run=RM_RUN (a run of "
                              f"algo={self.scored_by}), or run every stage with experiment=rlhf_arithmetic")
        if a.samples_per_prompt > 1 and a.batch_prompts * a.samples_per_prompt % a.minibatch_answers:
            raise ConfigError(f"algo.minibatch_answers={a.minibatch_answers} must divide the rollout's "
                              f"{a.batch_prompts * a.samples_per_prompt} answers")
        self.parallel = DataParallel(device)  # under accelerate launch: this process's share of each rollout
        world = self.parallel.world
        if world > 1 and (a.batch_prompts % world or a.total_prompts % a.batch_prompts or a.minibatch_answers % world):
            raise ConfigError(f"data-parallel over {world} processes: algo.batch_prompts ({a.batch_prompts}) and "
                              f"algo.minibatch_answers ({a.minibatch_answers}) must be multiples of {world}, and "
                              f"algo.total_prompts ({a.total_prompts}) a multiple of algo.batch_prompts")
        self.cfg, self.device = cfg, self.parallel.device
        device = self.device
        self.schedule = self.budget.schedule(cfg)
        policy, self.tokenizer, self.source = stage_model(cfg, self.starts_from, "lm")
        self.task = text_source(cfg, self.tokenizer)
        self.reward_model = load_reward_model(cfg.reward, self.tokenizer, self.scored_by).to(device)
        self.lora = cfg.lora is not None and cfg.lora.enabled
        self.reference = None
        if self.lora:
            lo = cfg.lora
            policy = add_lora(policy, rank=lo.rank, alpha=lo.alpha, dropout=lo.dropout,
                              target_modules=lo.target_modules, task_type="CAUSAL_LM")
        else:  # full fine-tuning: the reference is a frozen copy of the starting model
            self.reference = copy.deepcopy(policy).eval().requires_grad_(False).to(device)
        self.model = policy.to(device)
        base = policy.get_base_model() if self.lora else policy
        self.algo = algorithm_class(cfg)(a, base.config.get_text_config().hidden_size, device)
        self.value_head = self.algo.value_head  # run on the policy's last hidden state, for an algorithm with one
        self.policy_pass = PolicyPass(base.get_decoder(), base.get_output_embeddings(), self.value_head, a.temperature)
        self.reference_pass = (None if self.reference is None else PolicyPass(
            self.reference.get_decoder(), self.reference.get_output_embeddings(), None, a.temperature))
        self.trainable, self.total_params = parameter_counts(self.model)
        self.params = [p for p in self.model.parameters() if p.requires_grad] + self.algo.parameters()
        self.optimizer = torch.optim.AdamW(self.params, lr=a.lr, weight_decay=a.weight_decay)
        # the pass the updates run through: policy_pass, or its data-parallel wrapper when launched
        self.step_pass, self.optimizer = self.parallel.prepare(self.policy_pass, self.optimizer)
        self.kl_control = (AdaptiveKLController(a.kl_coef, a.kl_target, a.kl_horizon_answers)
                           if a.kl_target is not None else None)
        if self.task.has_gold:
            self.heldout_prompts = self.task.prompts(a.eval_prompts, np.random.default_rng([cfg.seed, 1]))
        else:  # the user's prompts: training ones drawn from train_file, the held-out ones fixed
            self.train_prompts, self.heldout_prompts = self.task.split("prompts", a.eval_prompts)
            self.score_name = "eval_reward"  # no gold utility: the reward model's score on held-out prompts
        self.rng = np.random.default_rng([cfg.seed, 2])  # the training prompts
        self.sampler = torch.Generator(device=device).manual_seed(seed_from(cfg.seed, 3))  # the answers
        self.shuffler = torch.Generator().manual_seed(seed_from(cfg.seed, 4))  # minibatch order
        self.progress = 0
        self.stats: dict[str, list[float]] = defaultdict(list)
        self._init_reference_evaluation()
        self.tokens, self.busy_s = 0, 0.0

    # ------------------------------------------------------------------ the model's passes

    @property
    def kl_coef(self) -> float:
        return self.kl_control.coef if self.kl_control is not None else self.cfg.algo.kl_coef

    # ------------------------------------------------------------------ the work

    def start(self, resumed: bool) -> list[str]:
        kind = "LoRA; the reference is the policy with its adapters off" if self.lora else \
            "every weight; the reference is a frozen copy"
        return [f"{self.cfg.algo.name} from {self.source}, scored by the reward model of {self.cfg.reward.from_run or self.cfg.reward.name_or_path}: "
                f"{self.trainable:,} of {self.total_params:,} parameters train ({kind})"]

    def advance(self) -> dict[str, float]:
        started = time.perf_counter()
        a = self.cfg.algo
        count = min(a.batch_prompts, self.schedule.total - self.progress)
        drawn = (self.task.prompts(count, self.rng) if self.task.has_gold
                 else self.task.draw(self.train_prompts, count, self.rng))
        prompts = self.parallel.shard(drawn)  # all of them unless data-parallel
        rows = [p for p in prompts for _ in range(a.samples_per_prompt)]
        r = self._answer(rows, self.sampler)
        mask = r["answer_mask"]
        score = r["reward"] - a.missing_eos_penalty * (~r["ended"]).float()
        advantages, returns = self.algo.advantages(Rollout(mask, r["logprobs"], r["ref_logprobs"], r["values"], score),
                                                   self.kl_coef)
        update = self._update(r, advantages, returns)
        kl_answer = float(r["kl"].mean())
        for key, value in (("reward", r["reward"].mean()), ("gold", r["gold"].mean()), ("kl", kl_answer),
                           ("entropy", r["entropy"]), ("response_length", mask.sum(1).mean()),
                           ("ended_rate", r["ended"].float().mean()), ("kl_coef", self.kl_coef)):
            self.stats[f"rlhf/{key}"].append(self.parallel.mean(float(value)))
        if self.kl_control is not None:
            self.kl_control.update(self.parallel.mean(kl_answer), len(rows) * self.parallel.world)
        self.progress += count
        self.tokens += int(r["mask"].sum()) * self.parallel.world
        self.busy_s += time.perf_counter() - started
        return update

    def _update(self, r: dict[str, Any], advantages: torch.Tensor, returns: torch.Tensor | None) -> dict[str, float]:
        """``update_epochs`` passes of minibatches over the rollout; the mean of their losses."""
        a = self.cfg.algo
        answers, minibatch = len(r["seq"]), a.minibatch_answers // self.parallel.world
        out: dict[str, list[float]] = defaultdict(list)
        self.model.train()
        for _ in range(a.update_epochs):
            order = torch.randperm(answers, generator=self.shuffler).to(self.device)
            for start in range(0, answers, minibatch):
                i = order[start:start + minibatch]
                m = r["answer_mask"][i].bool()
                logits, values = self.step_pass(r["seq"][i], r["mask"][i], r["prompt_len"])
                logprobs = token_logprobs(logits, r["answer"][i])
                old = None if values is None else r["values"][i]
                loss, parts = self.algo.loss(Minibatch(m, logprobs, r["logprobs"][i], r["ref_logprobs"][i], values, old,
                                                       advantages[i], None if returns is None else returns[i]),
                                             self.kl_coef)
                self.optimizer.zero_grad(set_to_none=True)
                self.parallel.backward(loss)
                if a.max_grad_norm is not None:
                    self.parallel.clip_grad_norm_(self.params, a.max_grad_norm)
                self.optimizer.step()
                for key, value in parts.items():
                    out[key].append(float(value.detach()))
                with torch.no_grad():
                    log_ratio = logprobs.detach() - r["logprobs"][i]
                    ratio = log_ratio.exp()
                    out["rlhf/clipfrac"].append(float(((ratio[m] - 1).abs() > a.clip_coef).float().mean()))
                    out["rlhf/approx_kl"].append(float(((ratio[m] - 1) - log_ratio[m]).mean()))
        return {k: self.parallel.mean(float(np.mean(v))) for k, v in out.items()}

    def log_metrics(self) -> dict[str, float]:
        metrics = {k: float(np.mean(v)) for k, v in self.stats.items()}
        if self.busy_s > 0:
            metrics["perf/tokens_per_s"] = self.tokens / self.busy_s
        self.stats, self.tokens, self.busy_s = defaultdict(list), 0, 0.0
        return metrics

    # ------------------------------------------------------------------ evaluation

    def summary(self) -> dict[str, Any]:
        return {"task": self.cfg.env.id, "trainable_parameters": self.trainable, "parameters": self.total_params,
                "lora": self.lora, "reward_run": self.cfg.reward.from_run or self.cfg.reward.name_or_path,
                **self._reference_summary()}

    # ------------------------------------------------------------------ exports and state

    def exports(self) -> dict[str, Any]:
        return model_exports(self.model, self.tokenizer, self.lora)

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(),
                "value_head": self.algo.state_dict(),
                "optimizer": self.optimizer.state_dict(), "rng": self.rng.bit_generator.state,
                "sampler": self.sampler.get_state(), "shuffler": self.shuffler.get_state(),
                "progress": self.progress, "stats": dict(self.stats), "tokens": self.tokens,
                "kl_coef": self.kl_coef, **self._reference_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.algo.load_state_dict(state["value_head"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
        self.sampler.set_state(state["sampler"])
        self.shuffler.set_state(state["shuffler"])
        self.progress, self.tokens = int(state["progress"]), int(state["tokens"])
        self.stats = defaultdict(list, {k: list(v) for k, v in state["stats"].items()})
        if self.kl_control is not None:
            self.kl_control.coef = float(state["kl_coef"])
        self._load_reference_state(state)

    def non_finite(self) -> str:
        named = list(self.model.named_parameters())
        named += [(f"value_head.{n}", p) for n, p in self.value_head.named_parameters()] if self.value_head else []
        for name, p in named:
            if not torch.isfinite(p).all():
                return f"parameter {name}"
        return ""

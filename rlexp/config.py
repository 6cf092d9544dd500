"""Typed config schemas, registered in Hydra's ConfigStore.

Every YAML option in ``conf/<group>/`` starts its defaults list with the matching schema
(``/schema/<group>/<name>@_here_``), so Hydra type-checks every value and refuses unknown
keys. Range checks live in ``__post_init__`` and run when :func:`to_typed` turns the
composed config into these dataclasses, before anything is written to disk.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from rlexp.errors import ConfigError

__all__ = ["ALGOS", "Algo", "ConfigError", "TrainConfig", "flatten", "to_typed"]  # and the schemas below


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as ``{"algo.lr": 0.001, ...}`` (lists become tuples, so values compare and hash)."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    if isinstance(node, list):
        return {prefix[:-1]: tuple(node)}
    return {prefix[:-1]: node}


def _positive(owner: str, **values: Any) -> None:
    for name, value in values.items():
        if value is None or not 0 < value < math.inf:  # `not`: NaN fails every comparison
            raise ConfigError(f"{owner}.{name} must be {_a_finite(value)}> 0, got {value}")


def _non_negative(owner: str, **values: Any) -> None:
    for name, value in values.items():
        if value is None or not 0 <= value < math.inf:
            raise ConfigError(f"{owner}.{name} must be {_a_finite(value)}>= 0, got {value}")


def _finite(owner: str, **values: Any) -> None:
    for name, value in values.items():
        if not math.isfinite(value):
            raise ConfigError(f"{owner}.{name} must be a finite number, got {value}")


def _a_finite(value: Any) -> str:
    """The words a range message needs for NaN and infinities (which pass or fail ``> 0`` misleadingly)."""
    return "a finite number " if isinstance(value, float) and not math.isfinite(value) else ""


def _unit_interval(owner: str, **values: Any) -> None:
    for name, value in values.items():
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{owner}.{name} must be in [0, 1], got {value}")


def _one_of(owner: str, name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{owner}.{name}={value!r} is not valid; choose one of: {', '.join(map(str, choices))}")


# --------------------------------------------------------------------------- algorithms


@dataclass
class DQNConfig:
    """Deep Q-Network (Mnih et al. 2015) with the usual modern switches."""

    name: str = "dqn"  # registry key in rlexp.config.ALGOS
    optimizer: str = "adam"  # adam, or rmsprop (centered, as the DQN Nature paper)
    lr: float = 1e-4  # learning rate
    optimizer_eps: float = 1e-8  # Adam/RMSProp epsilon (numerical floor of the second-moment estimate)
    rmsprop_alpha: float = 0.95  # RMSProp squared-gradient smoothing (DQN Nature: 0.95)
    gamma: float = 0.99  # discount factor
    buffer_capacity_transitions: int = 100_000  # replay capacity, in transitions
    batch_size: int = 32  # transitions per gradient update
    learning_starts_steps: int = 1_000  # agent steps of pure exploration before the first update
    train_interval_steps: int = 4  # agent steps between training phases
    updates_per_train: int = 1  # gradient updates in each training phase
    target_update_interval_steps: int = 1_000  # agent steps between target-network syncs
    tau: float = 1.0  # target sync rate: 1.0 hard copy, <1 Polyak averaging
    epsilon_start: float = 1.0  # exploration epsilon at step 0
    epsilon_end: float = 0.05  # exploration epsilon after the decay
    epsilon_decay_steps: int = 10_000  # agent steps of linear decay from start to end
    epsilon_eval: float = 0.0  # epsilon of the evaluation policy (0 = greedy)
    loss: str = "huber"  # TD loss: huber (smooth L1) or mse
    double_dqn: bool = False  # Double DQN target: online argmax, target value
    max_grad_norm: Optional[float] = 10.0  # gradient-norm clip; null disables clipping

    def __post_init__(self) -> None:
        o = "algo"
        _one_of(o, "optimizer", self.optimizer, ("adam", "rmsprop"))
        _positive(o, lr=self.lr, optimizer_eps=self.optimizer_eps, buffer_capacity_transitions=self.buffer_capacity_transitions,
                  batch_size=self.batch_size, train_interval_steps=self.train_interval_steps,
                  updates_per_train=self.updates_per_train,
                  target_update_interval_steps=self.target_update_interval_steps)
        _non_negative(o, learning_starts_steps=self.learning_starts_steps, epsilon_decay_steps=self.epsilon_decay_steps)
        _unit_interval(o, gamma=self.gamma, rmsprop_alpha=self.rmsprop_alpha, epsilon_start=self.epsilon_start, epsilon_end=self.epsilon_end,
                       epsilon_eval=self.epsilon_eval)
        if not 0.0 < self.tau <= 1.0:
            raise ConfigError(f"algo.tau must be in (0, 1], got {self.tau}")
        _one_of(o, "loss", self.loss, ("huber", "mse"))
        if self.max_grad_norm is not None:
            _positive(o, max_grad_norm=self.max_grad_norm)
        if self.batch_size > self.buffer_capacity_transitions:
            raise ConfigError(f"algo.batch_size={self.batch_size} is larger than the replay buffer "
                              f"(algo.buffer_capacity_transitions={self.buffer_capacity_transitions}); a batch must "
                              "fit in the buffer: lower algo.batch_size or raise the capacity")


@dataclass
class PPOConfig:
    """Proximal Policy Optimization (Schulman et al. 2017), clipped surrogate, GAE."""

    name: str = "ppo"  # registry key in rlexp.config.ALGOS
    lr: float = 2.5e-4  # Adam learning rate (at the start, when annealed)
    anneal_lr: bool = True  # decay the learning rate linearly to 0 over total_steps
    optimizer_eps: float = 1e-5  # Adam epsilon (1e-5 as in the PPO reference implementations)
    rollout_steps: int = 128  # steps per env between updates (rollout = rollout_steps x num_envs transitions)
    num_minibatches: int = 4  # minibatches per epoch over the rollout
    update_epochs: int = 4  # passes over each rollout
    gamma: float = 0.99  # discount factor
    gae_lambda: float = 0.95  # GAE lambda (1 = Monte-Carlo advantages, 0 = one-step TD)
    clip_coef: float = 0.1  # surrogate clip range epsilon (PPO paper, Atari: 0.1)
    anneal_clip: bool = False  # decay clip_coef linearly to 0 over total_steps
    clip_value_loss: bool = True  # clip the value update around the old values (as PPO2)
    ent_coef: float = 0.01  # entropy bonus coefficient
    vf_coef: float = 0.5  # value loss coefficient
    max_grad_norm: Optional[float] = 0.5  # gradient-norm clip; null disables
    norm_adv: bool = True  # normalize advantages per minibatch
    normalize_rewards: bool = False  # scale rewards by the running std of the discounted return (continuous control)
    target_kl: Optional[float] = None  # stop the epochs early when the approximate KL exceeds this; null never

    def __post_init__(self) -> None:
        o = "algo"
        _positive(o, lr=self.lr, optimizer_eps=self.optimizer_eps, rollout_steps=self.rollout_steps,
                  num_minibatches=self.num_minibatches, update_epochs=self.update_epochs)
        _unit_interval(o, gamma=self.gamma, gae_lambda=self.gae_lambda)
        _non_negative(o, clip_coef=self.clip_coef, ent_coef=self.ent_coef, vf_coef=self.vf_coef)
        if self.max_grad_norm is not None:
            _positive(o, max_grad_norm=self.max_grad_norm)
        if self.target_kl is not None:
            _positive(o, target_kl=self.target_kl)


@dataclass
class ReinforceConfig:
    """REINFORCE (Williams 1992): Monte-Carlo policy gradient on complete episodes."""

    name: str = "reinforce"  # registry key in rlexp.config.ALGOS
    lr: float = 1e-3  # Adam learning rate
    optimizer_eps: float = 1e-8  # Adam epsilon
    gamma: float = 0.99  # discount of the Monte-Carlo returns
    episodes_per_update: int = 1  # complete episodes per gradient step (collected across the parallel envs)
    baseline: str = "value"  # none, mean (the batch's mean return) or value (a learned state value)
    normalize_returns: bool = True  # scale the advantages to zero mean, unit std per update
    ent_coef: float = 0.0  # entropy bonus coefficient
    vf_coef: float = 0.5  # value loss coefficient (baseline=value)
    max_grad_norm: Optional[float] = None  # gradient-norm clip; null disables

    def __post_init__(self) -> None:
        o = "algo"
        _positive(o, lr=self.lr, optimizer_eps=self.optimizer_eps, episodes_per_update=self.episodes_per_update)
        _unit_interval(o, gamma=self.gamma)
        _one_of(o, "baseline", self.baseline, ("none", "mean", "value"))
        _non_negative(o, ent_coef=self.ent_coef, vf_coef=self.vf_coef)
        if self.max_grad_norm is not None:
            _positive(o, max_grad_norm=self.max_grad_norm)


@dataclass
class A2CConfig:
    """Synchronous advantage actor-critic (Mnih et al. 2016, A2C): one gradient step per rollout."""

    name: str = "a2c"  # registry key in rlexp.config.ALGOS
    optimizer: str = "rmsprop"  # rmsprop (the paper's) or adam
    lr: float = 7e-4  # learning rate
    anneal_lr: bool = False  # decay the learning rate linearly to 0 over total_steps
    optimizer_eps: float = 1e-5  # RMSProp/Adam epsilon
    rmsprop_alpha: float = 0.99  # RMSProp squared-gradient smoothing
    rollout_steps: int = 5  # steps per env per update (n of the n-step returns)
    gamma: float = 0.99  # discount factor
    gae_lambda: float = 1.0  # 1.0 = n-step returns; < 1 = GAE(lambda)
    ent_coef: float = 0.01  # entropy bonus coefficient
    vf_coef: float = 0.5  # value loss coefficient
    max_grad_norm: Optional[float] = 0.5  # gradient-norm clip; null disables
    norm_adv: bool = False  # normalize advantages over the rollout
    normalize_rewards: bool = False  # scale rewards by the running std of the discounted return

    def __post_init__(self) -> None:
        o = "algo"
        _one_of(o, "optimizer", self.optimizer, ("rmsprop", "adam"))
        _positive(o, lr=self.lr, optimizer_eps=self.optimizer_eps, rollout_steps=self.rollout_steps)
        _unit_interval(o, gamma=self.gamma, gae_lambda=self.gae_lambda, rmsprop_alpha=self.rmsprop_alpha)
        _non_negative(o, ent_coef=self.ent_coef, vf_coef=self.vf_coef)
        if self.max_grad_norm is not None:
            _positive(o, max_grad_norm=self.max_grad_norm)


@dataclass
class TabularConfig:
    """A Q-table learned by temporal differences, acting epsilon-greedy (Q-learning, SARSA)."""

    name: str = MISSING  # registry key in rlexp.config.ALGOS
    gamma: float = 0.99  # discount factor (1.0: undiscounted, values count the steps to the goal)
    alpha: float = 0.5  # step size of the TD update at the start
    alpha_end: float = 0.5  # step size after the decay (alpha_schedule=linear) or its floor (visits)
    alpha_decay_steps: int = 0  # linear schedule: agent steps from alpha to alpha_end; 0 = constant alpha
    alpha_schedule: str = "linear"  # linear, or visits: max(alpha_end, alpha / N(s, a)) (converges on stochastic envs)
    epsilon_start: float = 1.0  # exploration epsilon at step 0
    epsilon_end: float = 0.05  # exploration epsilon after the decay
    epsilon_decay_steps: int = 10_000  # agent steps of linear decay from start to end
    q_init: float = 0.0  # initial value of every Q(s, a) (zeros, as in Sutton & Barto; above the returns: optimistic exploration)

    def __post_init__(self) -> None:
        o = "algo"
        _unit_interval(o, gamma=self.gamma, epsilon_start=self.epsilon_start, epsilon_end=self.epsilon_end)
        _non_negative(o, alpha_decay_steps=self.alpha_decay_steps, epsilon_decay_steps=self.epsilon_decay_steps)
        for key in ("alpha", "alpha_end"):
            value = getattr(self, key)
            if not 0.0 < value <= 1.0:
                raise ConfigError(f"algo.{key} must be in (0, 1], got {value}")
        _one_of(o, "alpha_schedule", self.alpha_schedule, ("linear", "visits"))
        _finite(o, q_init=self.q_init)


@dataclass
class QLearningConfig(TabularConfig):
    """Tabular Q-learning (Watkins 1989): off-policy TD control, target r + gamma max_a' Q(s', a')."""

    name: str = "q_learning"  # registry key in rlexp.config.ALGOS


@dataclass
class SarsaConfig(TabularConfig):
    """Tabular SARSA (Rummery & Niranjan 1994): on-policy TD control, target r + gamma Q(s', a')."""

    name: str = "sarsa"  # registry key in rlexp.config.ALGOS


@dataclass
class ValueIterationConfig:
    """Value iteration: plans with the env's transition model (known) or one estimated from counts (learned)."""

    name: str = "value_iteration"  # registry key in rlexp.config.ALGOS
    gamma: float = 0.99  # discount factor
    model: str = "known"  # known: the env's exact model (P); learned: visit-count estimates, replanned as data comes
    theta: float = 1e-8  # planning stops when no state value changes by more than this
    max_iterations: int = 100_000  # planning sweeps at most (a safeguard for gamma = 1)
    plan_interval_steps: int = 100  # learned model: agent steps between replans
    epsilon_start: float = 0.0  # exploration epsilon at step 0 (learned model: e.g. 1.0)
    epsilon_end: float = 0.0  # exploration epsilon after the decay
    epsilon_decay_steps: int = 0  # agent steps of linear decay from start to end
    unknown_value: float = 0.0  # learned model: value of a never-tried (s, a) (optimism sends the agent to try it)

    def __post_init__(self) -> None:
        o = "algo"
        _one_of(o, "model", self.model, ("known", "learned"))
        _unit_interval(o, gamma=self.gamma, epsilon_start=self.epsilon_start, epsilon_end=self.epsilon_end)
        _positive(o, theta=self.theta, max_iterations=self.max_iterations, plan_interval_steps=self.plan_interval_steps)
        _non_negative(o, epsilon_decay_steps=self.epsilon_decay_steps)
        _finite(o, unknown_value=self.unknown_value)


@dataclass
class AlphaZeroConfig:
    """AlphaZero (Silver et al. 2017/2018): self-play with tree search, a policy-value network
    trained on the searches' policies and the games' outcomes. Progress counts games."""

    name: str = "alphazero"  # registry key in rlexp.config.ALGOS
    total_games: int = 2_000  # self-play games to play (the budget)
    log_interval_games: int = 100  # games between aggregated metric events
    eval_interval_games: int = 500  # games between evaluations; 0 evaluates only at the end
    checkpoint_interval_games: int = 500  # games between periodic checkpoints; 0 saves only the last
    concurrent_games: int = 64  # self-play games played at once (their leaves share one network call)
    simulations: int = 50  # search simulations per self-play move
    eval_simulations: int = 0  # simulations per move when evaluating or playing; 0: as in self-play
    root_search: str = "puct"  # puct (Dirichlet noise, visit-count target) or gumbel (Danihelka et al. 2022)
    c_puct: float = 1.25  # PUCT exploration constant (AlphaZero pseudocode: c_init 1.25)
    dirichlet_alpha: float = 0.3  # root noise concentration (AlphaZero: 0.3 chess, 0.15 shogi, 0.03 Go)
    dirichlet_fraction: float = 0.25  # share of the root prior replaced by noise (AlphaZero: 0.25)
    temperature_moves: int = 10  # self-play moves per game sampled in proportion to visits (then the most visited)
    gumbel_considered_actions: int = 16  # gumbel: root actions sampled without replacement (mctx default 16)
    gumbel_c_visit: float = 50.0  # gumbel: sigma(q) = (c_visit + max N) * c_scale * q (mctx default 50)
    gumbel_c_scale: float = 0.1  # gumbel: see gumbel_c_visit (mctx default 0.1)
    replay_window_positions: int = 50_000  # positions kept for training, newest replace oldest
    batch_size: int = 256  # positions per gradient step
    lr: float = 1e-3  # Adam learning rate
    weight_decay: float = 1e-4  # L2 regularization of the weights (AlphaZero: 1e-4)
    value_loss_coef: float = 1.0  # weight of the value MSE against the policy cross-entropy (AlphaZero: 1)
    max_grad_norm: Optional[float] = None  # gradient-norm clip; null disables
    train_interval_games: int = 64  # finished self-play games between training phases
    updates_per_train: int = 32  # gradient steps in each training phase
    learning_starts_positions: int = 512  # positions in the window before the first update
    augment: str = "none"  # none, or mirror: also learn each position flipped left-right (games whose rules are symmetric so)
    eval_games: int = 40  # games per opponent and evaluation (half as first player)
    eval_opponents: List[str] = field(default_factory=lambda: ["random"])  # random, mcts or perfect, during training
    mcts_opponent_simulations: int = 1_000  # the mcts opponent's random-rollout simulations per move
    figure_positions: int = 4  # positions drawn with the policy and value in the pictures

    def __post_init__(self) -> None:
        o = "algo"
        _positive(o, total_games=self.total_games, log_interval_games=self.log_interval_games,
                  concurrent_games=self.concurrent_games, simulations=self.simulations, c_puct=self.c_puct,
                  dirichlet_alpha=self.dirichlet_alpha, replay_window_positions=self.replay_window_positions,
                  batch_size=self.batch_size, lr=self.lr, train_interval_games=self.train_interval_games,
                  updates_per_train=self.updates_per_train, eval_games=self.eval_games,
                  mcts_opponent_simulations=self.mcts_opponent_simulations,
                  gumbel_considered_actions=self.gumbel_considered_actions, gumbel_c_visit=self.gumbel_c_visit,
                  gumbel_c_scale=self.gumbel_c_scale)
        _non_negative(o, eval_interval_games=self.eval_interval_games, eval_simulations=self.eval_simulations,
                      checkpoint_interval_games=self.checkpoint_interval_games, temperature_moves=self.temperature_moves,
                      weight_decay=self.weight_decay, value_loss_coef=self.value_loss_coef,
                      learning_starts_positions=self.learning_starts_positions, figure_positions=self.figure_positions)
        _unit_interval(o, dirichlet_fraction=self.dirichlet_fraction)
        _one_of(o, "root_search", self.root_search, ("puct", "gumbel"))
        _one_of(o, "augment", self.augment, ("none", "mirror"))
        if self.max_grad_norm is not None:
            _positive(o, max_grad_norm=self.max_grad_norm)
        for opponent in self.eval_opponents:
            _one_of(o, "eval_opponents", opponent, ("random", "mcts", "perfect", "untrained"))
        if self.batch_size > self.replay_window_positions:
            raise ConfigError(f"algo.batch_size={self.batch_size} is larger than the replay window "
                              f"(algo.replay_window_positions={self.replay_window_positions}); lower one or raise the other")


@dataclass
class LanguageModelingConfig:
    """A supervised language-model stage: next-token loss on texts (pretrain: the task's
    corpus, every token; sft: demonstrations, the answer's tokens only). Progress counts
    examples (sequences trained on)."""

    name: str = "sft"  # registry key: pretrain (a base model from the corpus) or sft (demonstrations)
    total_examples: int = 20_000  # sequences to train on (the budget; the dataset repeats in new orders)
    log_interval_examples: int = 2_000  # examples between aggregated metric events
    eval_interval_examples: int = 10_000  # examples between evaluations; 0 evaluates only at the end
    checkpoint_interval_examples: int = 10_000  # examples between periodic checkpoints; 0 saves only the last
    dataset_examples: int = 4_000  # texts generated for training (corpus lines or demonstrations)
    eval_prompts: int = 200  # held-out prompts (and texts) per evaluation
    batch_size: int = 64  # sequences per gradient step
    lr: float = 3e-3  # AdamW learning rate (LoRA adapters usually take a larger one than full fine-tuning)
    weight_decay: float = 0.0  # AdamW weight decay
    max_grad_norm: Optional[float] = 1.0  # gradient-norm clip; null disables
    max_answer_tokens: int = 12  # evaluation: answer tokens generated per prompt (greedy) before giving up

    def __post_init__(self) -> None:
        o = "algo"
        _one_of(o, "name", self.name, ("pretrain", "sft"))
        _positive(o, total_examples=self.total_examples, log_interval_examples=self.log_interval_examples,
                  dataset_examples=self.dataset_examples, eval_prompts=self.eval_prompts, batch_size=self.batch_size,
                  lr=self.lr, max_answer_tokens=self.max_answer_tokens)
        _non_negative(o, eval_interval_examples=self.eval_interval_examples, weight_decay=self.weight_decay,
                      checkpoint_interval_examples=self.checkpoint_interval_examples)
        if self.max_grad_norm is not None:
            _positive(o, max_grad_norm=self.max_grad_norm)


@dataclass
class RewardModelConfig:
    """RLHF's reward model: the language model with a scalar head on the last token, trained on
    preference pairs with the Bradley-Terry loss -log sigmoid(r_chosen - r_rejected). Progress
    counts pairs."""

    name: str = "reward_model"  # registry key
    total_pairs: int = 20_000  # preference pairs to train on (the budget; the dataset repeats in new orders)
    log_interval_pairs: int = 2_000  # pairs between aggregated metric events
    eval_interval_pairs: int = 10_000  # pairs between evaluations; 0 evaluates only at the end
    checkpoint_interval_pairs: int = 10_000  # pairs between periodic checkpoints; 0 saves only the last
    dataset_pairs: int = 4_000  # labelled pairs generated for training
    eval_pairs: int = 1_000  # held-out pairs per evaluation (accuracy against their labels)
    batch_size: int = 32  # pairs per gradient step
    lr: float = 3e-3  # AdamW learning rate
    weight_decay: float = 0.0  # AdamW weight decay
    max_grad_norm: Optional[float] = 1.0  # gradient-norm clip; null disables

    def __post_init__(self) -> None:
        o = "algo"
        _positive(o, total_pairs=self.total_pairs, log_interval_pairs=self.log_interval_pairs,
                  dataset_pairs=self.dataset_pairs, eval_pairs=self.eval_pairs, batch_size=self.batch_size, lr=self.lr)
        _non_negative(o, eval_interval_pairs=self.eval_interval_pairs, weight_decay=self.weight_decay,
                      checkpoint_interval_pairs=self.checkpoint_interval_pairs)
        if self.max_grad_norm is not None:
            _positive(o, max_grad_norm=self.max_grad_norm)


@dataclass
class PolicyOptimizationConfig:
    """RLHF's last stage, shared by rlhf_ppo and grpo: the policy (from an SFT run) writes answers
    to the task's prompts, the reward model (``reward.from_run``) scores them, and the policy
    learns from the score with a per-token KL penalty to the reference (the SFT model: the
    policy with its LoRA adapters disabled). Progress counts prompts."""

    name: str = MISSING  # registry key: rlhf_ppo or grpo
    total_prompts: int = 2_048  # prompts answered and learned from (the budget)
    log_interval_prompts: int = 256  # prompts between aggregated metric events
    eval_interval_prompts: int = 512  # prompts between evaluations; 0 evaluates only at the end
    checkpoint_interval_prompts: int = 1_024  # prompts between periodic checkpoints; 0 saves only the last
    eval_prompts: int = 256  # held-out prompts per evaluation (one sampled answer each, scored by gold, reward and KL)
    batch_prompts: int = 64  # prompts per rollout (each answered samples_per_prompt times)
    samples_per_prompt: int = 1  # answers sampled per prompt (grpo: the group size)
    update_epochs: int = 2  # passes over each rollout
    minibatch_answers: int = 32  # answers per gradient step
    lr: float = 2e-3  # AdamW learning rate
    weight_decay: float = 0.0  # AdamW weight decay
    max_grad_norm: Optional[float] = 1.0  # gradient-norm clip; null disables
    clip_coef: float = 0.2  # PPO's clip range of the probability ratio
    kl_coef: float = 0.2  # weight of the KL to the reference (initial value when kl_target is set)
    kl_estimator: str = "k1"  # per-token KL estimate: k1 (log p - log p_ref) or k3 (r - 1 - log r, never negative)
    kl_target: Optional[float] = None  # adaptive coefficient (Ziegler et al. 2019) steering the KL per answer here; null: fixed
    kl_horizon_answers: int = 10_000  # adaptive coefficient: answers over which it moves by at most 20%
    temperature: float = 1.0  # sampling temperature of the answers (training and evaluation)
    max_answer_tokens: int = 12  # an answer is cut after this many tokens
    missing_eos_penalty: float = 1.0  # subtracted from the score of an answer cut before its end-of-sequence token
    samples_logged: int = 8  # evaluation answers written to samples.jsonl and the W&B table, per evaluation

    def __post_init__(self) -> None:
        o = "algo"
        _one_of(o, "kl_estimator", self.kl_estimator, ("k1", "k3"))
        _positive(o, total_prompts=self.total_prompts, log_interval_prompts=self.log_interval_prompts,
                  eval_prompts=self.eval_prompts, batch_prompts=self.batch_prompts,
                  samples_per_prompt=self.samples_per_prompt, update_epochs=self.update_epochs,
                  minibatch_answers=self.minibatch_answers, lr=self.lr, clip_coef=self.clip_coef,
                  kl_horizon_answers=self.kl_horizon_answers, temperature=self.temperature,
                  max_answer_tokens=self.max_answer_tokens)
        _non_negative(o, eval_interval_prompts=self.eval_interval_prompts, weight_decay=self.weight_decay,
                      checkpoint_interval_prompts=self.checkpoint_interval_prompts, kl_coef=self.kl_coef,
                      missing_eos_penalty=self.missing_eos_penalty, samples_logged=self.samples_logged)
        if self.max_grad_norm is not None:
            _positive(o, max_grad_norm=self.max_grad_norm)
        if self.kl_target is not None:
            _positive(o, kl_target=self.kl_target)
        answers = self.batch_prompts * self.samples_per_prompt
        if self.minibatch_answers > answers:
            raise ConfigError(f"algo.minibatch_answers={self.minibatch_answers} exceeds the rollout's {answers} answers "
                              "(algo.batch_prompts x algo.samples_per_prompt)")


@dataclass
class RLHFPPOConfig(PolicyOptimizationConfig):
    """PPO on the token-level MDP (Ziegler et al. 2019; Ouyang et al. 2022): the reward model's
    score at the answer's last token, -kl_coef x KL at every token, a value head on the
    policy's last hidden state, GAE, whitened advantages and the clipped surrogate (rlexp's
    PPO functions)."""

    name: str = "rlhf_ppo"  # registry key
    vf_coef: float = 0.1  # weight of the value loss
    value_clip: Optional[float] = 0.2  # clip of the value update around the rollout's values; null disables
    gamma: float = 1.0  # discount over answer tokens
    gae_lambda: float = 0.95  # GAE lambda over answer tokens

    def __post_init__(self) -> None:
        super().__post_init__()
        _non_negative("algo", vf_coef=self.vf_coef)
        _unit_interval("algo", gamma=self.gamma, gae_lambda=self.gae_lambda)
        if self.value_clip is not None:
            _positive("algo", value_clip=self.value_clip)


@dataclass
class GRPOConfig(PolicyOptimizationConfig):
    """GRPO (Shao et al. 2024): no critic; each answer's advantage is its score against the
    other answers to the same prompt (samples_per_prompt of them), the KL to the reference a
    term of the loss (k3 by default, as in the paper)."""

    name: str = "grpo"  # registry key
    samples_per_prompt: int = 8  # answers sampled per prompt: the group each is compared with
    batch_prompts: int = 16  # prompts per rollout
    kl_estimator: str = "k3"  # per-token KL estimate in the loss: k3 (unbiased, never negative) or k1
    kl_coef: float = 0.05  # beta: weight of the KL term of the loss

    def __post_init__(self) -> None:
        if self.samples_per_prompt < 2:  # before the shared checks: they would name the minibatch instead
            raise ConfigError(f"algo.samples_per_prompt must be >= 2 for grpo (a group to compare with), "
                              f"got {self.samples_per_prompt}")
        super().__post_init__()


@dataclass
class RewardConfig:
    """Where the RL stage's reward comes from: the reward model an earlier stage trained."""

    from_run: Optional[str] = None  # a reward_model run directory (its model/ is the reward model); required


@dataclass
class LanguageModelConfig:
    """The language model of an RLHF stage: built small from these sizes (random init, no
    download), the model a previous stage saved, or a local directory."""

    from_run: Optional[str] = None  # start from the model an earlier stage's run saved in <run>/model/
    name_or_path: Optional[str] = None  # a local directory (or a cached hub id) with a causal LM and its tokenizer
    hidden_size: int = 64  # built model: width of the residual stream
    layers: int = 2  # built model: transformer blocks (Llama's: RMSNorm, rotary positions, SwiGLU)
    heads: int = 4  # built model: attention heads
    intermediate_size: int = 128  # built model: SwiGLU hidden width
    max_positions: int = 48  # built model: longest text in tokens (prompt and answer)

    def __post_init__(self) -> None:
        _positive("model", hidden_size=self.hidden_size, layers=self.layers, heads=self.heads,
                  intermediate_size=self.intermediate_size, max_positions=self.max_positions)
        if self.from_run and self.name_or_path:
            raise ConfigError("model.from_run and model.name_or_path both name a model; set one")
        if self.hidden_size % self.heads:
            raise ConfigError(f"model.hidden_size={self.hidden_size} must be a multiple of model.heads={self.heads}")


@dataclass
class LoraSettings:
    """LoRA (Hu et al. 2021) through peft: W' = W + (alpha / rank) B A, only A and B trained."""

    enabled: bool = True  # false: full fine-tuning (every weight trains), for comparison
    rank: int = 8  # rank of A and B
    alpha: float = 16.0  # scale numerator: the update is (alpha / rank) B A
    dropout: float = 0.0  # dropout on the adapter's input
    target_modules: List[str] = field(default_factory=lambda: ["q_proj", "v_proj"])  # linear layers adapted (Hu et al.: W_q, W_v)

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ConfigError(f"lora.rank must be >= 1, got {self.rank} (lora.enabled=false trains every weight)")
        _positive("lora", alpha=self.alpha)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"lora.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class TaskEnvConfig:
    """The shipped RLHF task (rlexp/lm/task.py): addition, and a labeler whose utility is known."""

    type: str = "lm_task"  # env builder: lm_task
    id: str = "arithmetic"  # the task (the only one shipped): arithmetic
    max_operand: int = 19  # operands drawn from [0, max_operand] (400 sums: a 2-layer model learns them all in a minute)
    padding_penalty: float = 0.1  # utility lost per character after the number
    near_miss_credit: float = 0.5  # utility of an answer off by one; halves per further unit
    annotator_correct: float = 0.6  # demonstrations and candidates: share right and concise
    annotator_padded: float = 0.2  # share right but padded; the rest miss by 1-3
    label_temperature: float = 0.1  # Bradley-Terry temperature of the preference labels (0: noiseless)

    def __post_init__(self) -> None:
        _one_of("env", "id", self.id, ("arithmetic",))
        _positive("env", max_operand=self.max_operand)
        _non_negative("env", padding_penalty=self.padding_penalty, label_temperature=self.label_temperature)
        _unit_interval("env", near_miss_credit=self.near_miss_credit, annotator_correct=self.annotator_correct,
                       annotator_padded=self.annotator_padded)
        if self.annotator_correct + self.annotator_padded > 1:
            raise ConfigError("env.annotator_correct + env.annotator_padded must be <= 1, got "
                              f"{self.annotator_correct + self.annotator_padded}")

    def task(self):
        from rlexp.lm.task import ArithmeticTask

        return ArithmeticTask(self.max_operand, self.padding_penalty, self.near_miss_credit, self.annotator_correct,
                              self.annotator_padded, self.label_temperature)


# --------------------------------------------------------------------------- groups


@dataclass
class EnvConfig:
    """A gymnasium environment, vectorized."""

    type: str = "gym"  # env builder: gym (any gymnasium id through gymnasium.make_vec)
    id: str = "CartPole-v1"  # gymnasium env id (any registered id)
    num_envs: int = 1  # parallel training envs; agent steps count every env's step
    vectorization: str = "sync"  # gymnasium vector mode: sync (one process) or async (subprocesses)
    max_episode_steps: Optional[int] = None  # episode step cap (truncation); null keeps the env's own
    kwargs: Dict[str, Any] = field(default_factory=dict)  # extra keyword arguments for gymnasium.make
    clip_rewards: bool = False  # learn from rewards clipped to [-1, 1]; logged returns stay raw

    def __post_init__(self) -> None:
        _one_of("env", "type", self.type, ("gym",))
        _positive("env", num_envs=self.num_envs)
        _one_of("env", "vectorization", self.vectorization, ("sync", "async"))
        if self.max_episode_steps is not None:
            _positive("env", max_episode_steps=self.max_episode_steps)


@dataclass
class GameEnvConfig:
    """A two-player board game from OpenSpiel (zero-sum, perfect information, deterministic)."""

    type: str = "openspiel"  # env builder: openspiel
    game: str = MISSING  # OpenSpiel game string: name or name(param=value,...), e.g. breakthrough(rows=6,columns=6)
    id: str = ""  # the name in run directories and titles; empty: the game string

    def __post_init__(self) -> None:
        from rlexp.games.openspiel import load_game

        load_game(self.game)
        if not self.id:
            self.id = self.game.replace(" ", "")


ATARI_PROTOCOLS = {
    # name: (sticky-action probability, life loss is terminal for learning)
    "nature": (0.0, True),  # Mnih et al. 2015
    "machado2018": (0.25, False),  # Machado et al. 2018, "Revisiting the ALE"
}


def atari_env_id(game: str) -> str:
    """``space_invaders`` -> ``ALE/SpaceInvaders-v5`` (the gymnasium id of the same ROM)."""
    return "ALE/" + "".join(part.capitalize() for part in game.split("_")) + "-v5"


@dataclass
class AtariEnvConfig:
    """An Atari 2600 game through ale-py's native vector env (C++ threads), DeepMind preprocessing."""

    type: str = "atari"  # env builder: atari
    game: str = MISSING  # ALE ROM name in snake_case: pong, breakout, space_invaders, ...
    id: str = ""  # gymnasium id for names and videos; empty derives it from game (ALE/Pong-v5)
    num_envs: int = 1  # parallel emulators; agent steps count every env's step
    protocol: str = "nature"  # evaluation protocol recorded with every score: nature or machado2018
    repeat_action_probability: Optional[float] = None  # sticky actions; null: the protocol's (nature 0, machado2018 0.25)
    life_loss_terminal: Optional[bool] = None  # a lost life ends the episode for bootstrapping; null: the protocol's
    full_action_space: bool = False  # all 18 actions for every game (a machado2018 option)
    frame_skip: int = 4  # emulator frames per agent step, max-pooled over the last two
    frame_stack: int = 4  # stacked frames per observation
    screen_size: int = 84  # observation height and width in pixels (grayscale)
    noop_max: int = 30  # up to this many no-op actions at reset
    fire_reset: bool = True  # press FIRE at reset in games that need it
    clip_rewards: bool = True  # learn from rewards clipped to [-1, 1]; logged returns stay the game score
    max_episode_frames: int = 108_000  # episode cap in emulator frames (108k = 30 minutes at 60 Hz)
    num_threads: int = 0  # ale-py worker threads; 0 = ale-py's default

    def __post_init__(self) -> None:
        import ale_py.roms

        games = sorted(ale_py.roms.get_all_rom_ids())
        if self.game not in games:
            import difflib

            close = difflib.get_close_matches(self.game, games, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"{len(games)} games, e.g. {', '.join(games[:5])}"
            raise ConfigError(f"env.game={self.game!r} is not an ALE game; {hint}")
        _one_of("env", "protocol", self.protocol, tuple(ATARI_PROTOCOLS))
        sticky, life_loss = ATARI_PROTOCOLS[self.protocol]
        if self.repeat_action_probability is None:
            self.repeat_action_probability = sticky
        if self.life_loss_terminal is None:
            self.life_loss_terminal = life_loss
        if not self.id:
            self.id = atari_env_id(self.game)
        _positive("env", num_envs=self.num_envs, frame_skip=self.frame_skip, frame_stack=self.frame_stack,
                  screen_size=self.screen_size, max_episode_frames=self.max_episode_frames)
        _non_negative("env", noop_max=self.noop_max, num_threads=self.num_threads)
        _unit_interval("env", repeat_action_probability=self.repeat_action_probability)


@dataclass
class MazeEnvConfig:
    """A gridworld maze drawn as text: -1 per step until the goal (rlexp.envs.maze)."""

    type: str = "maze"  # env builder: maze
    id: str = "maze"  # the maze's name, used in run directories and titles
    layout: str = MISSING  # rows of text: # wall, S start, G goal, space or . free
    num_envs: int = 1  # parallel copies; agent steps count every env's step
    slip_prob: float = 0.0  # probability that a move goes sideways instead (half to each side); 0 = deterministic
    step_reward: float = -1.0  # reward of every step (-1 per time step until the goal: values count the steps)
    max_episode_steps: int = 200  # episode step cap (truncation)
    clip_rewards: bool = False  # learn from rewards clipped to [-1, 1]

    def __post_init__(self) -> None:
        from rlexp.envs.maze import parse_layout

        parse_layout(self.layout)
        _positive("env", num_envs=self.num_envs, max_episode_steps=self.max_episode_steps)
        _unit_interval("env", slip_prob=self.slip_prob)
        _finite("env", step_reward=self.step_reward)


ACTIVATIONS = ("relu", "tanh", "elu", "gelu", "silu")


@dataclass
class NetworkConfig:
    """Function approximator; input and output sizes come from the env's spaces at build time."""

    name: str = "auto"  # architecture: auto (nature_cnn for frames, resnet for boards, else mlp), mlp, nature_cnn or resnet
    hidden_sizes: List[int] = field(default_factory=lambda: [256, 256])  # MLP: width of each hidden layer
    activation: str = "relu"  # MLP: hidden activation: relu, tanh, elu, gelu or silu
    cnn_hidden_size: int = 512  # Nature CNN: units of the fully connected layer after the convolutions
    shared_trunk: Optional[bool] = None  # actor-critic: actor and critic share hidden layers; null: shared CNN, separate MLPs
    normalize_obs: bool = False  # actor-critic: normalize vector observations by running mean/std (saved with the weights)
    log_std_init: float = 0.0  # continuous actions: initial log std of the Gaussian policy (state-independent)
    action_bound: str = "clip"  # continuous actions: clip the Gaussian draw to the bounds, or squash it (tanh)
    resnet_blocks: int = 5  # board games' residual tower: blocks (AlphaZero: 19 or 39)
    resnet_channels: int = 64  # board games' residual tower: channels per convolution (AlphaZero: 256)
    resnet_value_hidden: int = 64  # board games: hidden units of the value head (AlphaZero: 256)

    def __post_init__(self) -> None:
        _one_of("network", "name", self.name, ("auto", "mlp", "nature_cnn", "resnet"))
        _positive("network", resnet_blocks=self.resnet_blocks, resnet_channels=self.resnet_channels,
                  resnet_value_hidden=self.resnet_value_hidden)
        _one_of("network", "action_bound", self.action_bound, ("clip", "squash"))
        _positive("network", cnn_hidden_size=self.cnn_hidden_size)
        _finite("network", log_std_init=self.log_std_init)
        _one_of("network", "activation", self.activation, ACTIVATIONS)
        for width in self.hidden_sizes:
            if not isinstance(width, int) or width <= 0:
                raise ConfigError(f"network.hidden_sizes must be positive integers, got {list(self.hidden_sizes)}")


@dataclass
class DeviceConfig:
    """Where tensors live and how many CPU threads torch may use."""

    type: str = "auto"  # auto (CUDA when present, else CPU), cpu, cuda or cuda:N
    torch_threads: int = 0  # torch intra-op CPU threads; 0 keeps torch's default (one per core)
    deterministic: bool = False  # ask torch for deterministic kernels (slower on GPU)
    flush_denormal: bool = True  # CPU: treat denormal floats as zero (Adam's tiny moments otherwise run several times slower)
    amp: bool = False  # mixed precision: bfloat16 autocast for network passes (a GPU speed-up; losses stay fp32)
    compile: bool = False  # torch.compile the networks (pays off on GPUs for long runs; compiling takes ~1 min)
    replay: str = "auto"  # replay storage: auto (on the GPU when it fits in free memory, else pinned host), device or host
    fast_path: str = "auto"  # auto: DQN's and PPO's hand-written MLP gradient where it applies (autograd's numbers, faster on CPU); off: autograd always

    def __post_init__(self) -> None:
        _non_negative("device", torch_threads=self.torch_threads)
        _one_of("device", "replay", self.replay, ("auto", "device", "host"))
        _one_of("device", "fast_path", self.fast_path, ("auto", "off"))
        if self.type not in ("auto", "cpu", "cuda", "mps") and not self.type.startswith("cuda:"):
            raise ConfigError(f"device.type={self.type!r} is not valid; choose one of: auto, cpu, cuda, cuda:N, mps")


@dataclass
class WandbConfig:
    """Weights & Biases run settings (offline by default: no account, no network)."""

    mode: str = "offline"  # offline (files in the run dir), online (needs a login) or disabled
    project: str = "rlexp"  # W&B project
    entity: Optional[str] = None  # W&B team or user; null uses your default
    group: Optional[str] = None  # W&B group; null groups a multirun's jobs by its sweep directory
    tags: List[str] = field(default_factory=list)  # W&B tags
    name: Optional[str] = None  # W&B run name; null uses the run directory's name

    def __post_init__(self) -> None:
        _one_of("logger.wandb", "mode", self.mode, ("offline", "online", "disabled"))


@dataclass
class LoggerConfig:
    """Where metrics go: metrics.jsonl always, W&B and the console as set here."""

    log_interval_steps: int = 2_000  # agent steps between aggregated metric events
    progress: str = "auto"  # console output: auto (bar on a terminal, lines otherwise), bar, lines or none
    video_interval_evals: int = 0  # record one greedy episode as mp4 every N evaluations (videos/, W&B); 0 = never
    figures: bool = True  # PNGs in figures/ (and W&B images) at the end: learning curve; tabular: policy, values, model
    figure_interval_episodes: int = 0  # tabular pictures also every N training episodes (figures/*_episode<N>.png); 0 = end only
    figure_interval_evals: int = 0  # pictures also every N evaluations (figures/*_eval<N>.png); 0 = end only
    wandb: WandbConfig = field(default_factory=WandbConfig)  # W&B settings

    def __post_init__(self) -> None:
        _positive("logger", log_interval_steps=self.log_interval_steps)
        _non_negative("logger", video_interval_evals=self.video_interval_evals,
                      figure_interval_episodes=self.figure_interval_episodes,
                      figure_interval_evals=self.figure_interval_evals)
        _one_of("logger", "progress", self.progress, ("auto", "bar", "lines", "none"))
        for key in ("figure_interval_episodes", "figure_interval_evals"):
            if getattr(self, key) and not self.figures:
                raise ConfigError(f"logger.{key}={getattr(self, key)} draws pictures, but logger.figures=false turns "
                                  "them off; drop one of the two")


@dataclass
class LauncherConfig:
    """Where a multirun's jobs run (conf/launcher/); the fields each launcher reads are noted."""

    name: str = "basic"  # basic (one after another, in this process), joblib, submitit_local, submitit_slurm or ray
    n_jobs: int = 2  # joblib: parallel worker processes
    timeout_min: int = 60  # submitit: job time limit, minutes
    partition: Optional[str] = None  # submitit_slurm: SLURM partition; null uses the cluster's default
    gpus_per_node: int = 0  # submitit: GPUs per job
    cpus_per_task: int = 2  # submitit: CPU cores per job
    mem_gb: int = 8  # submitit: memory per job, GiB
    array_parallelism: int = 64  # submitit: jobs of the array running at once
    address: Optional[str] = None  # ray: an existing cluster (ray://host:10001, or auto); null starts a local Ray
    num_cpus: int = 1  # ray: CPUs each job reserves
    num_gpus: float = 0.0  # ray: GPUs each job reserves (fractions share a GPU)

    def __post_init__(self) -> None:
        o = "launcher"
        _one_of(o, "name", self.name, ("basic", "joblib", "submitit_local", "submitit_slurm", "ray"))
        if self.n_jobs == 0 or self.n_jobs < -1:
            raise ConfigError(f"launcher.n_jobs must be > 0 (or -1: one per core), got {self.n_jobs}")
        _positive(o, timeout_min=self.timeout_min, cpus_per_task=self.cpus_per_task, mem_gb=self.mem_gb,
                  array_parallelism=self.array_parallelism, num_cpus=self.num_cpus)
        _non_negative(o, gpus_per_node=self.gpus_per_node, num_gpus=self.num_gpus)


MAX_SEED = 2**32 - 1  # np.random.seed's upper bound


@dataclass
class TrainConfig:
    """One training run."""

    algo: Any = MISSING  # the algorithm: a schema from rlexp.config (e.g. DQNConfig)
    env: Any = MISSING  # the environment: EnvConfig or AtariEnvConfig
    network: NetworkConfig = MISSING  # the function approximator
    device: DeviceConfig = MISSING  # compute device
    logger: LoggerConfig = MISSING  # metric sinks
    launcher: LauncherConfig = MISSING  # where a multirun's jobs run
    seed: int = 1  # seeds python, numpy, torch and the envs
    seeds_per_job: int = 1  # seeds run by one job (seed, seed+1, ...); the job returns their mean final eval
    total_steps: int = 50_000  # agent steps to train (summed over parallel envs)
    eval_interval_steps: int = 5_000  # agent steps between evaluations; 0 evaluates only at the end
    eval_episodes: int = 10  # episodes per evaluation
    checkpoint_interval_steps: int = 25_000  # agent steps between periodic checkpoints; 0 saves only the last
    checkpoint_keep_last: int = 3  # periodic checkpoints kept (oldest removed); 0 keeps all
    checkpoint_replay: bool = True  # save the replay buffer / partial rollout with each checkpoint (exact resume)
    resume: Optional[str] = None  # a run directory to continue in place (rlexp train resume=DIR)
    model: Optional[LanguageModelConfig] = None  # language-model stages only (set by their algo config)
    lora: Optional[LoraSettings] = None  # language-model stages only (set by their algo config)
    reward: Optional[RewardConfig] = None  # the RL stages of RLHF only (set by their algo config)
    pipeline: Dict[str, List[str]] = field(default_factory=dict)  # stages run first, in order, each in its own run dir: algo name -> its overrides (experiment=rlhf_arithmetic)

    def __post_init__(self) -> None:
        _positive("", total_steps=self.total_steps, eval_episodes=self.eval_episodes, seeds_per_job=self.seeds_per_job)
        _non_negative("", eval_interval_steps=self.eval_interval_steps,
                      checkpoint_interval_steps=self.checkpoint_interval_steps,
                      checkpoint_keep_last=self.checkpoint_keep_last)
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        if self.seed + self.seeds_per_job - 1 > MAX_SEED:
            raise ConfigError(f"seed must be <= {MAX_SEED} (NumPy's seed range; with seeds_per_job, the last seed "
                              f"too), got {self.seed + self.seeds_per_job - 1}")


@dataclass(frozen=True)
class Algo:
    """A registered algorithm: its config schema, and the code that trains it.

    ``target`` and ``trainer`` are ``"module:Class"`` names, imported when a run is built, so
    reading configs (and refusing bad ones) never loads torch.
    """

    schema: type  # the dataclass of conf/algo/<name>.yaml
    target: str  # the algorithm class; "" where the trainer is the algorithm (the supervised language-model stages)
    trainer: str = "rlexp.trainers.gym:GymTrainer"  # the trainer family that drives it (steps a gymnasium env)


# The algorithm registry, one line each: name -> schema and class. Adding an algorithm is its
# file in rlexp/algos/ (class and math), its schema above and a line here, and conf/algo/<name>.yaml.
ALGOS: dict[str, Algo] = {
    "dqn": Algo(DQNConfig, "rlexp.algos.dqn:DQN"),
    "ppo": Algo(PPOConfig, "rlexp.algos.ppo:PPO"),
    "a2c": Algo(A2CConfig, "rlexp.algos.a2c:A2C"),
    "reinforce": Algo(ReinforceConfig, "rlexp.algos.reinforce:Reinforce"),
    "q_learning": Algo(QLearningConfig, "rlexp.algos.q_learning:QLearning"),
    "sarsa": Algo(SarsaConfig, "rlexp.algos.sarsa:Sarsa"),
    "value_iteration": Algo(ValueIterationConfig, "rlexp.algos.value_iteration:ValueIteration"),
    "alphazero": Algo(AlphaZeroConfig, "rlexp.algos.alphazero:AlphaZero", trainer="rlexp.trainers.selfplay:SelfPlayTrainer"),
    "pretrain": Algo(LanguageModelingConfig, "", trainer="rlexp.trainers.lm:PretrainTrainer"),
    "sft": Algo(LanguageModelingConfig, "", trainer="rlexp.trainers.lm:SFTTrainer"),
    "reward_model": Algo(RewardModelConfig, "", trainer="rlexp.trainers.lm:RewardModelTrainer"),
    "rlhf_ppo": Algo(RLHFPPOConfig, "rlexp.algos.rlhf_ppo:RLHFPPO", trainer="rlexp.trainers.rlhf:PolicyOptimizationTrainer"),
    "grpo": Algo(GRPOConfig, "rlexp.algos.grpo:GRPO", trainer="rlexp.trainers.rlhf:PolicyOptimizationTrainer"),
}

GROUP_SCHEMAS: dict[str, dict[str, type]] = {
    "algo": {name: algo.schema for name, algo in ALGOS.items()},
    "env": {"gym": EnvConfig, "atari": AtariEnvConfig, "maze": MazeEnvConfig, "openspiel": GameEnvConfig,
            "lm_task": TaskEnvConfig},
    "model": {"model": LanguageModelConfig},
    "lora": {"lora": LoraSettings},
    "reward": {"reward": RewardConfig},
    "network": {"network": NetworkConfig},
    "device": {"device": DeviceConfig},
    "logger": {"logger": LoggerConfig},
    "launcher": {"launcher": LauncherConfig},
}


def register_configs() -> None:
    """Store every schema under ``schema/<group>/<name>`` (kept out of the user-facing groups)."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    for group, schemas in GROUP_SCHEMAS.items():
        for name, node in schemas.items():
            cs.store(group=f"schema/{group}", name=name, node=node)


register_configs()

# ${slug:...} makes a value safe as one path component (ALE/Pong-v5 -> ALE-Pong-v5)
if not OmegaConf.has_resolver("atari_id"):
    OmegaConf.register_new_resolver("atari_id", lambda game: atari_env_id(str(game)))
if not OmegaConf.has_resolver("slug"):
    OmegaConf.register_new_resolver("slug", lambda value: re.sub(r"[^\w.=+-]+", "-", str(value)).strip("-"))


def to_typed(cfg: DictConfig) -> TrainConfig:
    """Turn a composed config into dataclasses, running every range check.

    Raises:
        ConfigError: a value is out of range (one line, naming the key).
    """
    try:
        typed = OmegaConf.to_object(cfg)
    except ConfigError as err:
        # __post_init__ raises with "."-prefixed keys for top-level fields.
        raise ConfigError(str(err).lstrip(".")) from None
    if not isinstance(typed, TrainConfig):  # pragma: no cover - guarded by train.yaml's defaults
        raise ConfigError("the composed config is not a TrainConfig; train.yaml must start with train_schema")
    return typed

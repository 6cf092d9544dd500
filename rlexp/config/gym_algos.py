"""Schemas of the algorithms that step a gymnasium env: DQN, PPO, A2C, REINFORCE, the tabular
learners, value iteration, and the off-policy continuous-control learners (SAC, TD3, DDPG)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from omegaconf import MISSING

from rlexp.config.checks import finite, non_negative, one_of, positive, unit_interval
from rlexp.errors import ConfigError


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
    loss: str = "huber"  # TD loss of expected values: huber (smooth L1) or mse (distributional losses are their own)
    double_dqn: bool = False  # Double DQN target: online argmax, target value (van Hasselt et al. 2016)
    max_grad_norm: Optional[float] = 10.0  # gradient-norm clip; null disables clipping
    # The Rainbow parts (Hessel et al. 2018), each on its own; algo=rainbow and algo=qr_dqn turn them on together.
    n_step: int = 1  # rewards folded into each target before bootstrapping (Rainbow: 3; DER: 10)
    replay: str = "uniform"  # replay sampling: uniform, or prioritized (proportional, Schaul et al. 2016)
    priority_exponent: float = 0.5  # prioritized: alpha in P(i) ~ p_i^alpha (Rainbow: 0.5; Schaul et al.: 0.6)
    importance_exponent_start: float = 0.4  # prioritized: beta of the importance weights at step 0 (Schaul et al., Rainbow: 0.4)
    importance_exponent_end: float = 1.0  # prioritized: beta at the last step, reached linearly (Schaul et al.: 1)
    dueling: bool = False  # a value and an advantage stream, Q = V + A - mean A (Wang et al. 2016)
    noisy: bool = False  # noisy fully connected layers explore instead of epsilon's decay (Fortunato et al. 2018)
    noisy_std_init: float = 0.5  # noisy: sigma_0, each noise scale starts at sigma_0 / sqrt(fan-in) (Fortunato et al., Rainbow: 0.5)
    distributional: str = "none"  # none (expected values), c51 (Bellemare et al. 2017) or qr (QR-DQN, Dabney et al. 2018)
    num_atoms: Optional[int] = None  # c51's support atoms or qr's quantiles; null: 51 for c51, 200 for qr (the papers')
    v_min: float = -10.0  # c51: the support's lowest return (Bellemare et al., Rainbow: -10)
    v_max: float = 10.0  # c51: the support's highest return (Bellemare et al., Rainbow: 10)
    augmentation: str = "none"  # frames seen by the updates: none, or random_shift (pad 4 and crop, then intensity jitter; DrQ as Dopamine runs it)

    def __post_init__(self) -> None:
        o = "algo"
        one_of(o, "optimizer", self.optimizer, ("adam", "rmsprop"))
        positive(o, lr=self.lr, optimizer_eps=self.optimizer_eps, buffer_capacity_transitions=self.buffer_capacity_transitions,
                  batch_size=self.batch_size, train_interval_steps=self.train_interval_steps,
                  updates_per_train=self.updates_per_train,
                  target_update_interval_steps=self.target_update_interval_steps)
        non_negative(o, learning_starts_steps=self.learning_starts_steps, epsilon_decay_steps=self.epsilon_decay_steps)
        unit_interval(o, gamma=self.gamma, rmsprop_alpha=self.rmsprop_alpha, epsilon_start=self.epsilon_start, epsilon_end=self.epsilon_end,
                       epsilon_eval=self.epsilon_eval)
        if not 0.0 < self.tau <= 1.0:
            raise ConfigError(f"algo.tau must be in (0, 1], got {self.tau}")
        one_of(o, "loss", self.loss, ("huber", "mse"))
        if self.max_grad_norm is not None:
            positive(o, max_grad_norm=self.max_grad_norm)
        if self.n_step < 1:
            raise ConfigError(f"algo.n_step must be >= 1 (1: one-step targets), got {self.n_step}")
        one_of(o, "replay", self.replay, ("uniform", "prioritized"))
        unit_interval(o, priority_exponent=self.priority_exponent, importance_exponent_start=self.importance_exponent_start,
                      importance_exponent_end=self.importance_exponent_end)
        one_of(o, "distributional", self.distributional, ("none", "c51", "qr"))
        if self.num_atoms is None:
            self.num_atoms = {"c51": 51, "qr": 200}.get(self.distributional)
        elif self.distributional == "none":
            raise ConfigError(f"algo.num_atoms={self.num_atoms} needs a value distribution: set algo.distributional=c51 "
                              "or qr (or leave num_atoms null)")
        if self.distributional != "none" and self.num_atoms < 2:
            raise ConfigError(f"algo.num_atoms must be >= 2 for algo.distributional={self.distributional}, got {self.num_atoms}")
        finite(o, v_min=self.v_min, v_max=self.v_max)
        if self.distributional == "c51" and self.v_min >= self.v_max:
            raise ConfigError(f"algo.v_min ({self.v_min}) must be below algo.v_max ({self.v_max}): they bound C51's support")
        positive(o, noisy_std_init=self.noisy_std_init)
        one_of(o, "augmentation", self.augmentation, ("none", "random_shift"))
        if self.noisy and self.epsilon_start != self.epsilon_end:
            raise ConfigError(
                f"algo.noisy=true explores through the noisy layers, with epsilon fixed at algo.epsilon_end; "
                f"algo.epsilon_start={self.epsilon_start} and algo.epsilon_decay_steps would be ignored: set "
                f"algo.epsilon_start={self.epsilon_end} (Rainbow: both 0; DER: both 0.01), or use algo=rainbow"
            )
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
        positive(o, lr=self.lr, optimizer_eps=self.optimizer_eps, rollout_steps=self.rollout_steps,
                  num_minibatches=self.num_minibatches, update_epochs=self.update_epochs)
        unit_interval(o, gamma=self.gamma, gae_lambda=self.gae_lambda)
        non_negative(o, clip_coef=self.clip_coef, ent_coef=self.ent_coef, vf_coef=self.vf_coef)
        if self.max_grad_norm is not None:
            positive(o, max_grad_norm=self.max_grad_norm)
        if self.target_kl is not None:
            positive(o, target_kl=self.target_kl)


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
        positive(o, lr=self.lr, optimizer_eps=self.optimizer_eps, episodes_per_update=self.episodes_per_update)
        unit_interval(o, gamma=self.gamma)
        one_of(o, "baseline", self.baseline, ("none", "mean", "value"))
        non_negative(o, ent_coef=self.ent_coef, vf_coef=self.vf_coef)
        if self.max_grad_norm is not None:
            positive(o, max_grad_norm=self.max_grad_norm)


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
        one_of(o, "optimizer", self.optimizer, ("rmsprop", "adam"))
        positive(o, lr=self.lr, optimizer_eps=self.optimizer_eps, rollout_steps=self.rollout_steps)
        unit_interval(o, gamma=self.gamma, gae_lambda=self.gae_lambda, rmsprop_alpha=self.rmsprop_alpha)
        non_negative(o, ent_coef=self.ent_coef, vf_coef=self.vf_coef)
        if self.max_grad_norm is not None:
            positive(o, max_grad_norm=self.max_grad_norm)


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
        unit_interval(o, gamma=self.gamma, epsilon_start=self.epsilon_start, epsilon_end=self.epsilon_end)
        non_negative(o, alpha_decay_steps=self.alpha_decay_steps, epsilon_decay_steps=self.epsilon_decay_steps)
        for key in ("alpha", "alpha_end"):
            value = getattr(self, key)
            if not 0.0 < value <= 1.0:
                raise ConfigError(f"algo.{key} must be in (0, 1], got {value}")
        one_of(o, "alpha_schedule", self.alpha_schedule, ("linear", "visits"))
        finite(o, q_init=self.q_init)


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
        one_of(o, "model", self.model, ("known", "learned"))
        unit_interval(o, gamma=self.gamma, epsilon_start=self.epsilon_start, epsilon_end=self.epsilon_end)
        positive(o, theta=self.theta, max_iterations=self.max_iterations, plan_interval_steps=self.plan_interval_steps)
        non_negative(o, epsilon_decay_steps=self.epsilon_decay_steps)
        finite(o, unknown_value=self.unknown_value)


@dataclass
class ContinuousOffPolicyConfig:
    """What SAC, TD3 and DDPG share: replay, the update schedule, the critics and their targets."""

    name: str = MISSING  # registry key in rlexp.config.ALGOS
    lr: float = 3e-4  # Adam learning rate of the actor, the critics and SAC's temperature (Haarnoja et al. 2018; Fujimoto et al.'s code)
    gamma: float = 0.99  # discount factor
    tau: float = 0.005  # Polyak rate of the target networks: target <- (1 - tau) target + tau online
    batch_size: int = 256  # transitions per gradient update
    buffer_capacity_transitions: int = 1_000_000  # replay capacity, in transitions
    learning_starts_steps: int = 10_000  # agent steps of uniform random actions before the first update
    train_interval_steps: int = 1  # agent steps between training phases
    updates_per_train: int = 1  # gradient updates in each training phase (updates per env step: this / train_interval_steps)
    n_critics: int = 2  # Q networks; their minimum makes the target (2: clipped double Q; 1: DDPG)

    def __post_init__(self) -> None:
        self._check_fields()
        # values each in range but impossible together: checked once every field is in range
        if self.batch_size > self.buffer_capacity_transitions:
            raise ConfigError(f"algo.batch_size={self.batch_size} is larger than the replay buffer "
                              f"(algo.buffer_capacity_transitions={self.buffer_capacity_transitions}); lower one")

    def _check_fields(self) -> None:
        o = "algo"
        positive(o, lr=self.lr, batch_size=self.batch_size, buffer_capacity_transitions=self.buffer_capacity_transitions,
                 train_interval_steps=self.train_interval_steps, updates_per_train=self.updates_per_train,
                 n_critics=self.n_critics)
        non_negative(o, learning_starts_steps=self.learning_starts_steps)
        unit_interval(o, gamma=self.gamma)
        if not 0.0 < self.tau <= 1.0:
            raise ConfigError(f"algo.tau must be in (0, 1] (the target networks' Polyak rate; 1 copies), got {self.tau}")


@dataclass
class SACConfig(ContinuousOffPolicyConfig):
    """Soft Actor-Critic (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications", Table 1)."""

    name: str = "sac"  # registry key in rlexp.config.ALGOS
    target_entropy: str = "auto"  # the entropy the temperature is tuned toward: auto (minus the action dimension) or a number
    alpha: Optional[float] = None  # a fixed entropy temperature; null tunes it toward target_entropy
    alpha_init: float = 1.0  # the tuned temperature's starting value (SB3, CleanRL)
    actor_update_interval_updates: int = 1  # critic updates per actor (and temperature) update
    target_update_interval_updates: int = 1  # critic updates per Polyak step of the target critics

    def _check_fields(self) -> None:
        super()._check_fields()
        if self.target_entropy != "auto":
            try:
                value = float(self.target_entropy)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise ConfigError(f"algo.target_entropy must be auto (minus the action dimension) or a number, "
                                  f"got {self.target_entropy!r}")
        if self.alpha is not None:
            positive("algo", alpha=self.alpha)
        positive("algo", alpha_init=self.alpha_init, actor_update_interval_updates=self.actor_update_interval_updates,
                 target_update_interval_updates=self.target_update_interval_updates)


@dataclass
class TD3Config(ContinuousOffPolicyConfig):
    """Twin Delayed DDPG (Fujimoto et al. 2018; the values of the authors' code). DDPG is its
    special case: one critic, no smoothing, no delay (conf/algo/ddpg.yaml)."""

    name: str = "td3"  # registry key in rlexp.config.ALGOS: td3, or ddpg
    learning_starts_steps: int = 25_000  # agent steps of uniform random actions before the first update (the authors' start_timesteps)
    exploration_noise: float = 0.1  # std of the Gaussian noise added to the policy's actions in [-1, 1] while training
    policy_noise: float = 0.2  # target policy smoothing: std of the noise on the target action; 0 turns smoothing off
    noise_clip: float = 0.5  # target policy smoothing: the noise is clipped to [-noise_clip, noise_clip]
    policy_delay: int = 2  # critic updates per actor update and target update (1: no delay)

    def _check_fields(self) -> None:
        super()._check_fields()
        non_negative("algo", exploration_noise=self.exploration_noise, policy_noise=self.policy_noise,
                     noise_clip=self.noise_clip)
        if self.policy_delay < 1:
            raise ConfigError(f"algo.policy_delay must be >= 1 (critic updates per actor update; 1: no delay), "
                              f"got {self.policy_delay}")

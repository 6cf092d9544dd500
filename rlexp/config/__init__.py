"""Typed config schemas and the registries that say what each name builds.

Every YAML option in ``conf/<group>/`` starts its defaults list with the matching schema
(``/schema/<group>/<name>@_here_``), so Hydra type-checks every value and refuses unknown
keys. Range checks live in ``__post_init__`` and run when :func:`to_typed` turns the
composed config into these dataclasses, before anything is written to disk. Checks that need
an env's or a game's library run when the run is built (:data:`ENVS`), still before then.

The package imports no algorithm, env library or torch; its modules:

- ``checks``: the range checks and :func:`flatten`;
- ``gym_algos``, ``games``, ``lm``: each family's algorithm schemas (and its own env's);
- ``envs``: the gymnasium envs' schemas; ``run``: network, device, logger, launcher and the
  root :class:`TrainConfig`;
- ``registry``: :data:`ALGOS`, :data:`ENVS`, :data:`GROUP_SCHEMAS`, :func:`register_configs`,
  :func:`to_typed`, :func:`compose`.
"""

from rlexp.config.checks import flatten
from rlexp.config.envs import ATARI_PROTOCOLS, AtariEnvConfig, EnvConfig, MazeEnvConfig, atari_env_id
from rlexp.config.games import AlphaZeroConfig, GameEnvConfig
from rlexp.config.gym_algos import (
    A2CConfig,
    ContinuousOffPolicyConfig,
    DQNConfig,
    PPOConfig,
    QLearningConfig,
    ReinforceConfig,
    SACConfig,
    SarsaConfig,
    TabularConfig,
    TD3Config,
    ValueIterationConfig,
)
from rlexp.config.lm import (
    DPOConfig,
    GRPOConfig,
    LanguageModelConfig,
    LanguageModelingConfig,
    LoraSettings,
    PolicyOptimizationConfig,
    RewardConfig,
    RewardModelConfig,
    RLHFPPOConfig,
    RLOOConfig,
    TaskEnvConfig,
    TextDataEnvConfig,
)
from rlexp.config.registry import ALGOS, ENVS, GROUP_SCHEMAS, Algo, Env, compose, register_configs, to_typed
from rlexp.config.run import (
    ACTIVATIONS,
    MAX_SEED,
    DeviceConfig,
    LauncherConfig,
    LoggerConfig,
    NetworkConfig,
    TrainConfig,
    WandbConfig,
)
from rlexp.errors import ConfigError

__all__ = [
    "ACTIVATIONS", "ALGOS", "ATARI_PROTOCOLS", "ENVS", "ContinuousOffPolicyConfig", "SACConfig", "TD3Config", "GROUP_SCHEMAS", "MAX_SEED", "A2CConfig", "Algo",
    "AlphaZeroConfig", "AtariEnvConfig", "ConfigError", "DQNConfig", "DeviceConfig", "Env", "EnvConfig",
    "GRPOConfig", "GameEnvConfig", "LanguageModelConfig", "LanguageModelingConfig", "LauncherConfig",
    "LoggerConfig", "LoraSettings", "MazeEnvConfig", "NetworkConfig", "PPOConfig", "PolicyOptimizationConfig",
    "DPOConfig", "QLearningConfig", "RLHFPPOConfig", "RLOOConfig", "ReinforceConfig", "RewardConfig", "RewardModelConfig", "SarsaConfig",
    "TabularConfig", "TaskEnvConfig", "TextDataEnvConfig", "TrainConfig", "ValueIterationConfig", "WandbConfig", "atari_env_id",
    "compose", "flatten", "register_configs", "to_typed",
]

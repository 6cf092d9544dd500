"""The registries: each algorithm's schema, class and trainer family (:data:`ALGOS`); each
env type's schema and the build-time check its library supplies (:data:`ENVS`); the schemas
of every config group (:data:`GROUP_SCHEMAS`), stored in Hydra's ConfigStore by
:func:`register_configs`; and :func:`to_typed` / :func:`compose`, the way a composed config
becomes a checked :class:`~rlexp.config.run.TrainConfig`.

Nothing here imports an algorithm, an env library or torch: targets are ``"module:name"``
strings, imported when a run is built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from rlexp.config.envs import AtariEnvConfig, EnvConfig, MazeEnvConfig, atari_env_id
from rlexp.config.games import AlphaZeroConfig, GameEnvConfig
from rlexp.config.gym_algos import (
    A2CConfig,
    DQNConfig,
    PPOConfig,
    QLearningConfig,
    ReinforceConfig,
    SACConfig,
    SarsaConfig,
    TD3Config,
    ValueIterationConfig,
)
from rlexp.config.lm import (
    DPOConfig,
    GRPOConfig,
    LanguageModelConfig,
    LanguageModelingConfig,
    LoraSettings,
    RewardConfig,
    RewardModelConfig,
    RLHFPPOConfig,
    RLOOConfig,
    TaskEnvConfig,
    TextDataEnvConfig,
)
from rlexp.config.run import DeviceConfig, LauncherConfig, LoggerConfig, NetworkConfig, TrainConfig
from rlexp.errors import ConfigError


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
# file in rlexp/algos/ (class and math), its schema in this package and a line here, and
# conf/algo/<name>.yaml.
ALGOS: dict[str, Algo] = {
    "dqn": Algo(DQNConfig, "rlexp.algos.dqn:DQN"),
    "rainbow": Algo(DQNConfig, "rlexp.algos.dqn:DQN"),  # DQN with all six parts (conf/algo/rainbow.yaml)
    "qr_dqn": Algo(DQNConfig, "rlexp.algos.dqn:DQN"),  # DQN learning quantiles (conf/algo/qr_dqn.yaml)
    "ppo": Algo(PPOConfig, "rlexp.algos.ppo:PPO"),
    "a2c": Algo(A2CConfig, "rlexp.algos.a2c:A2C"),
    "reinforce": Algo(ReinforceConfig, "rlexp.algos.reinforce:Reinforce"),
    "q_learning": Algo(QLearningConfig, "rlexp.algos.q_learning:QLearning"),
    "sarsa": Algo(SarsaConfig, "rlexp.algos.sarsa:Sarsa"),
    "value_iteration": Algo(ValueIterationConfig, "rlexp.algos.value_iteration:ValueIteration"),
    "sac": Algo(SACConfig, "rlexp.algos.sac:SAC"),
    "td3": Algo(TD3Config, "rlexp.algos.td3:TD3"),
    "ddpg": Algo(TD3Config, "rlexp.algos.td3:TD3"),  # TD3 with one critic, no smoothing, no delay (conf/algo/ddpg.yaml)
    "alphazero": Algo(AlphaZeroConfig, "rlexp.algos.alphazero:AlphaZero", trainer="rlexp.trainers.selfplay:SelfPlayTrainer"),
    "pretrain": Algo(LanguageModelingConfig, "", trainer="rlexp.trainers.lm:PretrainTrainer"),
    "sft": Algo(LanguageModelingConfig, "", trainer="rlexp.trainers.lm:SFTTrainer"),
    "reward_model": Algo(RewardModelConfig, "", trainer="rlexp.trainers.lm:RewardModelTrainer"),
    "rlhf_ppo": Algo(RLHFPPOConfig, "rlexp.algos.rlhf_ppo:RLHFPPO", trainer="rlexp.trainers.rlhf:PolicyOptimizationTrainer"),
    "grpo": Algo(GRPOConfig, "rlexp.algos.grpo:GRPO", trainer="rlexp.trainers.rlhf:PolicyOptimizationTrainer"),
    "rloo": Algo(RLOOConfig, "rlexp.algos.rloo:RLOO", trainer="rlexp.trainers.rlhf:PolicyOptimizationTrainer"),
    "dpo": Algo(DPOConfig, "", trainer="rlexp.trainers.dpo:DPOTrainer"),  # offline, from preference pairs
}



@dataclass(frozen=True)
class Env:
    """A registered env type (``env.type``): its config schema, and the check its library runs
    on the config when a run is built (what a schema cannot know without loading the library:
    a ROM's existence, a game's rules, a maze's shape), before the run directory gets a file."""

    schema: type  # the dataclass of conf/env/<option>.yaml files of this type
    check: str = ""  # "module:function" taking the env config and raising ConfigError; "" when the schema's checks are all


ENVS: dict[str, Env] = {
    "gym": Env(EnvConfig, "rlexp.envs.make:check_config"),
    "atari": Env(AtariEnvConfig, "rlexp.envs.atari:check_config"),
    "maze": Env(MazeEnvConfig, "rlexp.envs.maze:check_config"),
    "openspiel": Env(GameEnvConfig, "rlexp.games.openspiel:check_config"),
    "lm_task": Env(TaskEnvConfig),
    "text_data": Env(TextDataEnvConfig),
}

GROUP_SCHEMAS: dict[str, dict[str, type]] = {
    "algo": {name: algo.schema for name, algo in ALGOS.items()},
    "env": {name: env.schema for name, env in ENVS.items()},
    "model": {"model": LanguageModelConfig},
    "lora": {"lora": LoraSettings},
    "reward": {"reward": RewardConfig},
    "network": {"network": NetworkConfig},
    "device": {"device": DeviceConfig},
    "logger": {"logger": LoggerConfig},
    "launcher": {"launcher": LauncherConfig},
}


def register_configs() -> None:
    """Store every schema under ``schema/<group>/<name>`` (kept out of the user-facing groups)
    and the resolvers the YAML uses; safe to call again. Whatever composes ``conf/`` calls it
    first (``rlexp.train``, :func:`compose`)."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    for group, schemas in GROUP_SCHEMAS.items():
        for name, node in schemas.items():
            cs.store(group=f"schema/{group}", name=name, node=node)
    if not OmegaConf.has_resolver("atari_id"):
        OmegaConf.register_new_resolver("atari_id", lambda game: atari_env_id(str(game)))
    if not OmegaConf.has_resolver("slug"):  # a value safe as one path component (ALE/Pong-v5 -> ALE-Pong-v5)
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


def compose(overrides: Sequence[str] = ()) -> TrainConfig:
    """The checked config of ``rlexp train OVERRIDES`` (without running it): Python's way to
    read ``conf/`` as the CLI does (tests, benches, notebooks).

    Raises:
        ConfigError: a value is out of range (one line, naming the key).
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    register_configs()
    with initialize_config_module("rlexp.conf", version_base="1.3"):
        return to_typed(hydra_compose("train", overrides=list(overrides)))

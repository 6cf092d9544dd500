"""One place builds a run, for ``rlexp train``, ``rlexp eval`` and ``rlexp resume`` alike: the
process settings, the device, the seeds, the trainer and its algorithm, the eval seeds.

Everything here that can refuse the config does so before the run directory gets a file.
"""

from __future__ import annotations

import contextlib
import importlib
import random
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import torch

from rlexp.config import ALGOS, ENVS, Algo, DeviceConfig, TrainConfig
from rlexp.errors import ConfigError

if TYPE_CHECKING:
    from rlexp.trainers.base import Trainer

EVAL_SEED_OFFSET = 1_000_000  # evaluation envs get seeds far from the training envs'
MAX_EVAL_ENVS = 16  # evaluation episodes run on at most this many env copies at once

# device.* settings an algorithm may honour, with their defaults (anything else is refused
# when the algorithm does not list it in Algorithm.DEVICE_SETTINGS)
DEVICE_SETTING_DEFAULTS = {"amp": False, "compile": False, "replay": "auto"}
DEVICE_SETTING_WHAT = {"amp": "bfloat16 autocast of network passes", "compile": "torch.compile of networks",
                       "replay": "replay buffer placement"}


def eval_seed(seed: int, index: int, episodes: int) -> int:
    """The env seed of a run's ``index``-th evaluation of ``episodes`` episodes (0, 1, ...):
    every evaluation sees new episodes, and the same ones in every run of the same seed."""
    return seed + EVAL_SEED_OFFSET + index * episodes


def resolve_device(cfg: DeviceConfig) -> torch.device:
    """``auto`` -> CUDA when torch sees a GPU, else CPU; explicit requests are checked.

    Raises:
        ConfigError: the requested device is not available here.
    """
    kind = cfg.type
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind.startswith("cuda"):
        if not torch.cuda.is_available():
            why = "this torch is a CPU-only build" if torch.version.cuda is None else "torch sees no CUDA GPU"
            raise ConfigError(f"device={kind} is not available ({why}); valid choices here: auto, cpu")
        index = int(kind.split(":")[1]) if ":" in kind else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device={kind} does not exist; this machine has {torch.cuda.device_count()} CUDA device(s)")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device=mps is not available; valid choices here: auto, cpu")
    return torch.device(kind)


def _flush_denormal_on() -> bool:
    """Whether this thread treats denormal floats as zero (torch has no getter: probe it)."""
    tiny = torch.tensor([1e-40], dtype=torch.float32)
    return bool((tiny * torch.ones(1))[0] == 0)


def _set_deterministic(on: bool) -> None:
    # only when it changes: the first call is slow (torch imports its compiler stack)
    if torch.are_deterministic_algorithms_enabled() != on:
        torch.use_deterministic_algorithms(on, warn_only=True)


@contextlib.contextmanager
def process_settings(cfg: DeviceConfig) -> Iterator[None]:
    """Apply the process-wide settings of ``device.*`` (torch threads, flush-denormal,
    deterministic kernels) for the duration, and put back what was there before: a Python
    caller's process is left as it was."""
    threads, flush, deterministic = torch.get_num_threads(), _flush_denormal_on(), torch.are_deterministic_algorithms_enabled()
    try:
        if cfg.torch_threads > 0:
            torch.set_num_threads(cfg.torch_threads)
        torch.set_flush_denormal(cfg.flush_denormal)
        _set_deterministic(cfg.deterministic)
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        torch.set_flush_denormal(flush)
        _set_deterministic(deterministic)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_target(target: str) -> Any:
    """The object a registry entry names as ``"module:attribute"``."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def registered(name: str) -> Algo:
    """The registry entry of algorithm ``name``.

    Raises:
        ConfigError: no such algorithm (one line with the valid choices).
    """
    if name not in ALGOS:
        raise ConfigError(f"algo.name={name!r} is not registered; valid choices: {', '.join(ALGOS)}")
    return ALGOS[name]


def trainer_class(name: str) -> type["Trainer"]:
    """The trainer class (the family) that drives algorithm ``name``.

    Raises:
        ConfigError: no such algorithm (one line with the valid choices).
    """
    return load_target(registered(name).trainer)


def check_device_settings(cfg: TrainConfig, honoured: tuple[str, ...]) -> None:
    """Refuse a ``device.*`` setting the algorithm would not honour (one line), rather than
    ignore it silently."""
    for key, default in DEVICE_SETTING_DEFAULTS.items():
        value = getattr(cfg.device, key)
        if key not in honoured and value != default:
            uses = ", ".join(f"device.{k}" for k in honoured) or "none of them"
            raise ConfigError(f"device.{key}={str(value).lower()} ({DEVICE_SETTING_WHAT[key]}) does not apply to "
                              f"algo={cfg.algo.name} (it uses {uses}); drop it")


def check_env(env_cfg: Any) -> None:
    """Run the check the env type's library supplies (``rlexp.config.ENVS``): what its schema
    cannot know without loading the library (a ROM, a game's rules, a maze's shape).

    Raises:
        ConfigError: the library cannot use this env config (one line).
    """
    kind = ENVS.get(env_cfg.type)
    if kind is not None and kind.check:
        load_target(kind.check)(env_cfg)


def build_trainer(cfg: TrainConfig, given: set[str] | None = None) -> "Trainer":
    """The trainer of ``cfg.algo`` (its family's, from the registry), on the configured device;
    ``given``: the keys the command set (a setting of another family's unit is refused even at
    its default value).

    Raises:
        ConfigError: the config cannot run here (one line); nothing has been written.
    """
    from rlexp.budget import refuse_other_units

    check_env(cfg.env)
    cls = trainer_class(cfg.algo.name)
    if getattr(cls, "budget", None) is not None:
        refuse_other_units(cfg, cls.budget, cfg.algo.name, given)
    return cls(cfg, resolve_device(cfg.device))


def algorithm_class(cfg: TrainConfig) -> Any:
    """The registered class of ``cfg.algo``, once the device settings it would ignore are refused."""
    cls = load_target(registered(cfg.algo.name).target)
    check_device_settings(cfg, cls.DEVICE_SETTINGS)
    return cls


def build_algorithm(cfg: TrainConfig, envs: Any, device: torch.device, algo_cfg: Any = None) -> Any:
    """The algorithm of ``cfg`` for the spaces (and the exact model, where one exists) of the
    vector env ``envs``; ``algo_cfg`` replaces ``cfg.algo`` (e.g. a small replay for eval).

    Raises:
        ConfigError: the algorithm cannot learn on this env or with these settings (one line).
    """
    from rlexp.envs import transition_model

    cls = algorithm_class(cfg)
    return cls(algo_cfg or cfg.algo, envs.single_observation_space, envs.single_action_space, cfg.network, device,
               cfg.seed, cfg.env.num_envs, compute=cfg.device, total_steps=cfg.total_steps,
               env_model=transition_model(envs))

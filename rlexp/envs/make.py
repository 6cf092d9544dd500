"""Build gymnasium environments from an :class:`~rlexp.config.EnvConfig`: the env stack.

Vector envs use gymnasium's vector API in SAME_STEP autoreset mode: when an episode ends,
``step`` returns the first observation of the next episode and puts the real last
observation in ``info["final_obs"]``, which the learner needs to bootstrap on truncation.

Every vector env records its episodes (gymnasium's ``RecordEpisodeStatistics``): where one
really ended, ``info["_episode"]`` is set and ``info["episode"]["r"]`` holds its return, the
real score. With ``learning=True`` the stack also turns the env's outputs into learning
signals where the env config asks for them: rewards clipped to [-1, 1] (``clip_rewards``) and
a lost Atari life as a terminal (``life_loss_terminal``). A trainer reads episodes from the
stats and learns from what ``step`` returns; it never needs to know which env it steps.
"""

from __future__ import annotations

import ctypes.util
import difflib
import importlib
import importlib.util
import os

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers.vector import RecordEpisodeStatistics, TransformReward

from rlexp.config import AtariEnvConfig, EnvConfig, MazeEnvConfig
from rlexp.errors import ConfigError, first_line


def _check_id(env_id: str) -> None:
    """A registered id, or ``module:Id`` whose module registers it on import (as gymnasium.make takes).

    Raises:
        ConfigError: unknown id, or a module that cannot be imported (one line).
    """
    if ":" in env_id:
        module, _, env_id = env_id.partition(":")
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ConfigError(f"env.id={module}:{env_id}: cannot import {module!r} to register it ({err})") from None
    if env_id in gym.registry:
        return
    try:  # lets gymnasium import plugin namespaces (e.g. "ALE/") before we give up
        gym.spec(env_id)
        return
    except gym.error.Error:
        pass
    close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see gymnasium.pprint_registry() for the ids"
    raise ConfigError(f"env.id={env_id!r} is not a registered gymnasium environment{hint}")


def is_mujoco(env_id: str) -> bool:
    """Whether ``env_id`` is one of gymnasium's MuJoCo tasks (its entry point is in gymnasium.envs.mujoco)."""
    try:
        entry = gym.spec(env_id.partition(":")[2] or env_id).entry_point
    except gym.error.Error:
        return False
    return isinstance(entry, str) and entry.startswith("gymnasium.envs.mujoco")


def check_config(cfg: EnvConfig) -> None:
    """Refuse a gymnasium id that is not registered, or a MuJoCo task without the mujoco
    package (one line naming the extra); run when a run is built, before any file.

    Raises:
        ConfigError: the env cannot be made here.
    """
    _check_id(cfg.id)
    if is_mujoco(cfg.id) and importlib.util.find_spec("mujoco") is None:
        raise ConfigError(f"env.id={cfg.id} is a MuJoCo task and the mujoco package is not installed: "
                          "pip install 'rlexp[mujoco]' (or pip install mujoco)")


def mujoco_headless_rendering() -> None:
    """Pick MuJoCo's OpenGL backend for off-screen frames (videos) where no screen is set:
    EGL where its library exists, else OSMesa; the user's ``MUJOCO_GL`` wins.

    Raises:
        ConfigError: no screen and neither library (one line naming the packages to install).
    """
    if "MUJOCO_GL" in os.environ or os.environ.get("DISPLAY"):
        return
    for backend, library in (("egl", "EGL"), ("osmesa", "OSMesa")):
        if ctypes.util.find_library(library):
            os.environ["MUJOCO_GL"] = backend
            os.environ.setdefault("PYOPENGL_PLATFORM", backend)
            return
    raise ConfigError("MuJoCo renders videos off-screen through EGL or OSMesa, and this machine has neither: install "
                      "one (Debian/Ubuntu: apt install libegl1, or libosmesa6), or set MUJOCO_GL")


def _make_kwargs(cfg: EnvConfig) -> dict:
    kwargs = dict(cfg.kwargs)
    if cfg.max_episode_steps is not None:
        kwargs["max_episode_steps"] = cfg.max_episode_steps
    return kwargs


def _make_maze(cfg: MazeEnvConfig, render_mode: str | None = None) -> gym.Env:
    from rlexp.envs.maze import MazeEnv

    env = MazeEnv(cfg.layout, slip_prob=cfg.slip_prob, step_reward=cfg.step_reward, render_mode=render_mode)
    return gym.wrappers.TimeLimit(env, max_episode_steps=cfg.max_episode_steps)


def make_env(cfg: EnvConfig | AtariEnvConfig | MazeEnvConfig, render_mode: str | None = None) -> gym.Env:
    """One (non-vector) env whose observations match one copy of the vector env, e.g. for videos."""
    if render_mode == "rgb_array":
        # off-screen rendering: pygame's SDL otherwise probes for a display and prints
        # "error: XDG_RUNTIME_DIR is invalid" on headless machines
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    if isinstance(cfg, AtariEnvConfig):
        from rlexp.envs.atari import make_atari_env

        return make_atari_env(cfg, render_mode)
    if isinstance(cfg, MazeEnvConfig):
        return _make_maze(cfg, render_mode)
    _check_id(cfg.id)
    if render_mode == "rgb_array" and is_mujoco(cfg.id):
        mujoco_headless_rendering()
    return gym.make(cfg.id, render_mode=render_mode, **_make_kwargs(cfg))


def make_vector_env(
    cfg: EnvConfig | AtariEnvConfig | MazeEnvConfig, num_envs: int | None = None, *, learning: bool = False
) -> gym.vector.VectorEnv:
    """A vector env of ``num_envs`` copies (default ``cfg.num_envs``), autoreset in the same step,
    with episode statistics; ``learning=True`` adds the learning signals (module docstring).

    Raises:
        ConfigError: unknown env id or bad kwargs, in one line.
    """
    envs = RecordEpisodeStatistics(_base_vector_env(cfg, num_envs))
    if learning and cfg.clip_rewards:
        envs = TransformReward(envs, clip_reward)
    if learning and getattr(cfg, "life_loss_terminal", False):
        from rlexp.envs.atari import LifeLossTerminal

        envs = LifeLossTerminal(envs)
    return envs


def clip_reward(rewards: np.ndarray) -> np.ndarray:
    """Rewards clipped to [-1, 1] (Mnih et al. 2015): the sign of the score change, for learning."""
    return np.clip(rewards, -1.0, 1.0)


def _base_vector_env(cfg: EnvConfig | AtariEnvConfig | MazeEnvConfig, num_envs: int | None) -> gym.vector.VectorEnv:
    if isinstance(cfg, AtariEnvConfig):
        from rlexp.envs.atari import make_atari_vector_env

        return make_atari_vector_env(cfg, num_envs)
    if isinstance(cfg, MazeEnvConfig):
        return gym.vector.SyncVectorEnv([lambda: _make_maze(cfg)] * (num_envs or cfg.num_envs),
                                        autoreset_mode=AutoresetMode.SAME_STEP)
    _check_id(cfg.id)
    try:
        return gym.make_vec(
            cfg.id,
            num_envs=num_envs or cfg.num_envs,
            vectorization_mode=cfg.vectorization,
            vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
            **_make_kwargs(cfg),
        )
    except TypeError as err:
        raise ConfigError(f"env.kwargs do not fit {cfg.id}: {err}") from None
    except gym.error.DependencyNotInstalled as err:
        raise ConfigError(f"{cfg.id} needs an extra package: {first_line(err)}") from None


def transition_model(envs: gym.vector.VectorEnv) -> dict | None:
    """The exact model ``P[s][a] = [(prob, next_state, reward, terminated), ...]`` of an env that
    exposes one (gymnasium's toy-text envs, the maze), else None. Every copy shares it."""
    copies = getattr(envs.unwrapped, "envs", None)  # SyncVectorEnv
    if not copies:
        return None
    return getattr(copies[0].unwrapped, "P", None)


def failing_env_index(err: BaseException) -> int | None:
    """Which copy of a vector env raised ``err`` during ``step``: read from the traceback (the
    loop index of gymnasium's SyncVectorEnv.step), so the hot path pays nothing for it. None
    when it cannot be told (another vector env)."""
    step_code = gym.vector.SyncVectorEnv.step.__code__
    tb = err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code is step_code:
            index = tb.tb_frame.f_locals.get("i")
            return int(index) if isinstance(index, int) else None
        tb = tb.tb_next
    return None

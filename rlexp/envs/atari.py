"""Atari 2600 games with the DeepMind preprocessing, through ale-py's native vector env.

ale-py's ``AtariVectorEnv`` runs the emulators in C++ threads and does the preprocessing
itself (frame skip with a max over the last two frames, 84x84 grayscale, frame stack,
no-op starts, FIRE on reset). rlexp asks it for raw rewards and game-over terminals only:
a lost life is flagged in ``info["life_loss"]``, and reward clipping and life-loss terminals
are learning signals that the env stack adds on top of the episode statistics
(``rlexp.envs.make``), so every logged return is the real game score. Two traps avoided:
its ``episodic_life=True`` restarts the whole game at each lost life, and its default
``reward_clipping=True`` hides the score.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper

from rlexp.config import AtariEnvConfig
from rlexp.errors import ConfigError


class LifeLossInfo(VectorWrapper):
    """Adds ``info["life_loss"]``: the env lost a life this step and the game goes on."""

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._lives = np.asarray(info["lives"]).copy()
        return obs, info

    def step(self, actions):
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        lives = np.asarray(info["lives"])
        info["life_loss"] = (lives < self._lives) & ~(terminated | truncated)
        self._lives = lives.copy()  # after a game over this is the new game's count
        return obs, rewards, terminated, truncated, info


class LifeLossTerminal(VectorWrapper):
    """A lost life is a terminal for learning (Mnih et al. 2015): ``terminated |= info["life_loss"]``.

    The game goes on (the env does not reset), and the episode statistics below this
    wrapper still count the whole game as one episode.
    """

    def step(self, actions):
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        life_loss = info.get("life_loss")
        if life_loss is not None:
            terminated = terminated | life_loss
        return obs, rewards, terminated, truncated, info


def check_config(cfg: AtariEnvConfig) -> None:
    """Refuse a game the installed ale-py has no ROM for (one line, with the closest names).

    Raises:
        ConfigError: ``env.game`` is not an ALE game.
    """
    import difflib

    import ale_py.roms

    games = sorted(ale_py.roms.get_all_rom_ids())
    if cfg.game not in games:
        close = difflib.get_close_matches(cfg.game, games, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else f"{len(games)} games, e.g. {', '.join(games[:5])}"
        raise ConfigError(f"env.game={cfg.game!r} is not an ALE game; {hint}")


def make_atari_vector_env(cfg: AtariEnvConfig, num_envs: int | None = None) -> VectorEnv:
    """``num_envs`` emulators (default ``cfg.num_envs``), autoreset in the same step."""
    from ale_py.vector_env import AtariVectorEnv

    envs = AtariVectorEnv(
        cfg.game,
        num_envs or cfg.num_envs,
        num_threads=cfg.num_threads,
        max_num_frames_per_episode=cfg.max_episode_frames,
        repeat_action_probability=cfg.repeat_action_probability,
        full_action_space=cfg.full_action_space,
        autoreset_mode=AutoresetMode.SAME_STEP,
        img_height=cfg.screen_size,
        img_width=cfg.screen_size,
        grayscale=True,
        stack_num=cfg.frame_stack,
        frameskip=cfg.frame_skip,
        maxpool=True,
        noop_max=cfg.noop_max,
        episodic_life=False,
        life_loss_info=False,
        reward_clipping=False,
        use_fire_reset=cfg.fire_reset,
    )
    return LifeLossInfo(envs) if cfg.life_loss_terminal else envs


def make_atari_env(cfg: AtariEnvConfig, render_mode: str | None = None) -> gym.Env:
    """One game through gymnasium's own wrappers (for rendering videos).

    ``AtariPreprocessing`` + ``FrameStackObservation`` produce the same observations as the
    vector env (tests/envs/test_atari.py checks it frame for frame), so a policy sees the
    same inputs while the video shows the full-colour screen. Needs OpenCV
    (``opencv-python-headless``).
    """
    import ale_py
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

    gym.register_envs(ale_py)
    env = gym.make(
        cfg.id,
        frameskip=1,
        repeat_action_probability=cfg.repeat_action_probability,
        full_action_space=cfg.full_action_space,
        max_num_frames_per_episode=cfg.max_episode_frames,
        render_mode=render_mode,
    )
    if cfg.fire_reset and "FIRE" in env.unwrapped.get_action_meanings():
        env = FireReset(env)
    env = AtariPreprocessing(
        env, noop_max=cfg.noop_max, frame_skip=cfg.frame_skip, screen_size=cfg.screen_size,
        terminal_on_life_loss=False, grayscale_obs=True, scale_obs=False,
    )
    env = FrameStackObservation(env, cfg.frame_stack, padding_type="zero")
    # one rendered frame per agent step: play videos at the game's real speed (60 Hz / skip)
    env.metadata = {**env.metadata, "render_fps": 60 / cfg.frame_skip}
    return env


class FireReset(gym.Wrapper):
    """Press FIRE for one emulator frame after reset, as ale-py's vector env does.

    Wraps the raw (frameskip=1) env, under the preprocessing.
    """

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        fire = self.env.unwrapped.get_action_meanings().index("FIRE")
        obs, _, terminated, truncated, info = self.env.step(fire)
        if terminated or truncated:
            obs, info = self.env.reset(**kwargs)
        return obs, info

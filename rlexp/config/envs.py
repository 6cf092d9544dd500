"""Schemas of the gymnasium envs: any registered id, Atari through ale-py, the text maze.

What needs the env's library (the ALE's ROM list, the maze parser) is checked when a run is
built (``rlexp.envs.check_config``), not here: reading a config loads no env library."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from omegaconf import MISSING

from rlexp.config.checks import finite, non_negative, one_of, positive, unit_interval


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
        one_of("env", "type", self.type, ("gym",))
        positive("env", num_envs=self.num_envs)
        one_of("env", "vectorization", self.vectorization, ("sync", "async"))
        if self.max_episode_steps is not None:
            positive("env", max_episode_steps=self.max_episode_steps)



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
        one_of("env", "protocol", self.protocol, tuple(ATARI_PROTOCOLS))
        sticky, life_loss = ATARI_PROTOCOLS[self.protocol]
        if self.repeat_action_probability is None:
            self.repeat_action_probability = sticky
        if self.life_loss_terminal is None:
            self.life_loss_terminal = life_loss
        if not self.id:
            self.id = atari_env_id(self.game)
        positive("env", num_envs=self.num_envs, frame_skip=self.frame_skip, frame_stack=self.frame_stack,
                  screen_size=self.screen_size, max_episode_frames=self.max_episode_frames)
        non_negative("env", noop_max=self.noop_max, num_threads=self.num_threads)
        unit_interval("env", repeat_action_probability=self.repeat_action_probability)


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
        positive("env", num_envs=self.num_envs, max_episode_steps=self.max_episode_steps)
        unit_interval("env", slip_prob=self.slip_prob)
        finite("env", step_reward=self.step_reward)

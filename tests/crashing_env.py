"""A CartPole that crashes after ``crash_after`` steps (a job that fails mid-run, for the sweep tests).

Used as ``env.id=tests.crashing_env:Crashing-v0``: gymnasium imports this module for the id.
"""

import gymnasium as gym
from gymnasium.envs.classic_control import CartPoleEnv


class CrashingCartPole(CartPoleEnv):
    def __init__(self, crash_after: int = 0, render_mode=None):
        super().__init__(render_mode=render_mode)
        self.crash_after, self.steps = crash_after, 0

    def step(self, action):
        self.steps += 1
        if self.crash_after and self.steps > self.crash_after:
            raise RuntimeError(f"simulated crash after {self.crash_after} steps")
        return super().step(action)


if "Crashing-v0" not in gym.registry:
    gym.register("Crashing-v0", entry_point=CrashingCartPole, max_episode_steps=500)

"""The env stack: builders for gymnasium, Atari (ale-py) and maze envs, with episode statistics
and the learning signals a config asks for, and the action log that restores envs on resume."""

from rlexp.envs.make import failing_env_index, make_env, make_vector_env, transition_model
from rlexp.envs.restore import ActionLog, obs_digest

__all__ = ["ActionLog", "failing_env_index", "make_env", "make_vector_env", "obs_digest", "transition_model"]

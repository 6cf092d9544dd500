"""Environment builders."""

from rlexp.envs.make import make_env, make_vector_env, transition_model

__all__ = ["make_env", "make_vector_env", "transition_model"]

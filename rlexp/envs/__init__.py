"""Environment builders."""

from rlexp.envs.make import failing_env_index, make_env, make_vector_env, transition_model

__all__ = ["failing_env_index", "make_env", "make_vector_env", "transition_model"]

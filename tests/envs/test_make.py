import numpy as np
import pytest

from rlexp.config import ConfigError, EnvConfig
from rlexp.envs import make_env, make_vector_env


def test_vector_env_autoresets_in_the_same_step():
    envs = make_vector_env(EnvConfig(id="CartPole-v1", num_envs=2, max_episode_steps=5))
    envs.reset(seed=0)
    for _ in range(4):
        _, _, terminated, truncated, _ = envs.step(np.zeros(2, dtype=int))
    obs, _, terminated, truncated, info = envs.step(np.zeros(2, dtype=int))
    done = terminated | truncated
    assert done.all()
    # SAME_STEP: the returned obs starts the next episode, the real last one is in final_obs
    assert all(not np.array_equal(obs[i], info["final_obs"][i]) for i in range(2))
    envs.close()


def test_num_envs_and_kwargs():
    envs = make_vector_env(EnvConfig(id="CartPole-v1", num_envs=3, kwargs={"sutton_barto_reward": True}))
    assert envs.num_envs == 3
    envs.close()
    env = make_env(EnvConfig(id="CartPole-v1", max_episode_steps=7))
    assert env.spec.max_episode_steps == 7
    env.close()


def test_unknown_id_suggests_close_matches():
    with pytest.raises(ConfigError, match=r"env.id='CartPol-v1' is not a registered gymnasium environment; did you mean CartPole-v1"):
        make_vector_env(EnvConfig(id="CartPol-v1"))


def test_bad_kwargs_are_one_line():
    with pytest.raises(ConfigError, match="env.kwargs do not fit CartPole-v1"):
        make_vector_env(EnvConfig(id="CartPole-v1", kwargs={"no_such_arg": 1}))

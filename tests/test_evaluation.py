import numpy as np

from rlexp.config import EnvConfig
from rlexp.envs import make_vector_env
from rlexp.evaluation import evaluate


def test_runs_exactly_the_requested_episodes():
    envs = make_vector_env(EnvConfig(id="CartPole-v1"), num_envs=3)
    returns, lengths = evaluate(lambda obs: np.zeros(len(obs), dtype=int), envs, episodes=7, seed=0)
    assert returns.shape == (7,) and lengths.shape == (7,)
    assert np.array_equal(returns, lengths)  # CartPole: +1 per step
    again, _ = evaluate(lambda obs: np.zeros(len(obs), dtype=int), envs, episodes=7, seed=0)
    assert np.array_equal(np.sort(returns), np.sort(again))  # seeded
    envs.close()


def test_a_good_policy_scores_higher_than_a_bad_one():
    envs = make_vector_env(EnvConfig(id="CartPole-v1"), num_envs=4)
    bad, _ = evaluate(lambda obs: np.zeros(len(obs), dtype=int), envs, episodes=4, seed=1)
    # push the cart towards the side the pole leans to
    good, _ = evaluate(lambda obs: (obs[:, 2] + obs[:, 3] > 0).astype(int), envs, episodes=4, seed=1)
    assert good.mean() > 3 * bad.mean()
    envs.close()

"""Atari through ale-py's vector env: preprocessing shown equal to gymnasium's wrappers."""

import numpy as np
import pytest

from rlexp.config import AtariEnvConfig, ConfigError
from rlexp.envs import make_env, make_vector_env


def _cfg(**kw) -> AtariEnvConfig:
    return AtariEnvConfig(**{"game": "breakout", **kw})


@pytest.mark.parametrize("fire_reset", [False, True])
def test_vector_env_equals_gymnasium_wrappers_frame_for_frame(fire_reset):
    """AtariVectorEnv == AtariPreprocessing + FrameStackObservation on the same seed and actions.

    No-op starts draw from different RNGs in the two pipelines, so they are off here; all
    the rest (frame skip 4 with a max over the last two frames, 84x84 grayscale by area
    resize, zero-padded stack of 4, FIRE on reset, episode end) is compared exactly.
    """
    cfg = _cfg(noop_max=0, fire_reset=fire_reset)
    vec = make_vector_env(cfg)
    single = make_env(cfg)
    obs_v, _ = vec.reset(seed=3)
    obs_s, _ = single.reset(seed=3)
    assert obs_v.shape == (1, 4, 84, 84) and obs_v.dtype == np.uint8
    assert np.array_equal(obs_v[0], obs_s)
    rng = np.random.default_rng(0)
    steps, ended = 0, False
    while not ended:
        action = int(rng.integers(vec.single_action_space.n))
        obs_v, r_v, term_v, trunc_v, info_v = vec.step(np.array([action]))
        obs_s, r_s, term_s, trunc_s, _ = single.step(action)
        ended = bool(term_v[0] or trunc_v[0])
        seen_v = info_v["final_obs"][0] if ended else obs_v[0]  # SAME_STEP: obs_v restarts
        assert np.array_equal(seen_v, obs_s), f"step {steps}"
        assert r_v[0] == r_s and (term_v[0], trunc_v[0]) == (term_s, trunc_s), f"step {steps}"
        steps += 1
    assert steps > 50  # a whole game of five lives
    vec.close()
    single.close()


def test_raw_rewards_and_life_loss_signal():
    cfg = _cfg(game="space_invaders", life_loss_terminal=True)
    envs = make_vector_env(cfg, num_envs=2)
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    rewards, life_losses, game_overs = [], 0, 0
    for _ in range(1500):
        _, r, term, trunc, info = envs.step(rng.integers(envs.single_action_space.n, size=2))
        rewards.extend(r.tolist())
        life_losses += int(info["life_loss"].sum())
        game_overs += int((term | trunc).sum())
        assert not (info["life_loss"] & (term | trunc)).any()
    assert max(rewards) > 1  # the game score, not a clipped reward
    assert life_losses >= 2  # lives lost while the game went on
    envs.close()


def test_protocols():
    nature, machado = _cfg(), _cfg(protocol="machado2018")
    assert (nature.repeat_action_probability, nature.life_loss_terminal) == (0.0, True)
    assert (machado.repeat_action_probability, machado.life_loss_terminal) == (0.25, False)
    assert _cfg(protocol="machado2018", repeat_action_probability=0.1).repeat_action_probability == 0.1
    assert _cfg(game="space_invaders").id == "ALE/SpaceInvaders-v5"
    envs = make_vector_env(machado)
    envs.reset(seed=0)
    assert "life_loss" not in envs.step(np.array([0]))[4]  # no life-loss terminals under machado2018
    envs.close()


def test_bad_game_is_one_line():
    from rlexp.envs.atari import check_config

    cfg = _cfg(game="pacmn")  # the schema loads no ROM list: the check runs when a run is built
    with pytest.raises(ConfigError, match="env.game='pacmn' is not an ALE game; did you mean pacman"):
        check_config(cfg)

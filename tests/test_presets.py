"""Every experiment preset composes with the paper's numbers, and runs for a few steps."""

from importlib import resources

import pytest

from rlexp.config import AtariEnvConfig, DQNConfig
from rlexp.train import run
from tests.conftest import compose_train

pytestmark = pytest.mark.slow  # learning, subprocesses or whole pipelines: left out of make test-fast

PRESETS = sorted(f.name[: -len(".yaml")] for f in resources.files("rlexp.conf").joinpath("experiment").iterdir()
                 if f.name.endswith(".yaml"))
ATARI_DQN = [p for p in PRESETS if p.startswith("dqn_") and p.endswith("_mnih2015") and p != "dqn_atari_mnih2015"]
REQUIRED = {"dqn_atari_mnih2015": ["env.game=breakout"], "der_atari100k": ["env.game=boxing"],
            "drq_eps_atari100k": ["env.game=boxing"]}  # the game-generic preset: the game is the user's


def test_the_six_dqn_paper_presets_exist():
    games = {"pong", "breakout", "seaquest", "space_invaders", "beam_rider", "qbert"}
    assert {p.removeprefix("dqn_").removesuffix("_mnih2015") for p in ATARI_DQN} == games


@pytest.mark.parametrize("preset", ATARI_DQN)
def test_dqn_mnih2015_presets_have_the_papers_settings(preset):
    cfg = compose_train([f"experiment={preset}"])
    algo, env = cfg.algo, cfg.env
    assert isinstance(algo, DQNConfig) and isinstance(env, AtariEnvConfig)
    assert cfg.total_steps * env.frame_skip == 50_000_000
    assert (algo.buffer_capacity_transitions, algo.batch_size, algo.gamma) == (1_000_000, 32, 0.99)
    assert (algo.target_update_interval_steps, algo.learning_starts_steps, algo.train_interval_steps) == (10_000, 50_000, 4)
    assert (algo.epsilon_start, algo.epsilon_end, algo.epsilon_decay_steps * env.frame_skip) == (1.0, 0.1, 1_000_000)
    assert (algo.optimizer, algo.lr, algo.epsilon_eval) == ("rmsprop", 2.5e-4, 0.05)
    assert env.protocol == "nature" and env.repeat_action_probability == 0.0 and env.life_loss_terminal
    assert cfg.network.name == "nature_cnn"


def test_the_six_games_share_one_definition():
    """Each game's preset is the game-generic one with its env: the numbers live in one place."""
    for preset in ATARI_DQN:
        text = resources.files("rlexp.conf").joinpath("experiment", f"{preset}.yaml").read_text()
        body = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
        game = preset.removeprefix("dqn_").removesuffix("_mnih2015")
        assert body == ["defaults:", "  - dqn_atari_mnih2015", f"  - override /env: {game}"], preset
    generic = compose_train(["experiment=dqn_atari_mnih2015", "env=seaquest"])
    assert generic == compose_train(["experiment=dqn_seaquest_mnih2015"])
    assert compose_train(["algo=dqn", "env=seaquest"]).algo == generic.algo  # and algo=dqn env=GAME picks them too


def test_adam_variant_is_a_one_line_override():
    cfg = compose_train(["experiment=dqn_pong_mnih2015", "algo.optimizer=adam", "algo.lr=1e-4"])
    assert (cfg.algo.optimizer, cfg.algo.lr) == ("adam", 1e-4)


SMOKE = ["total_steps=320", "eval_interval_steps=0", "eval_episodes=1", "checkpoint_interval_steps=0",
         "logger=none", "logger.progress=none"]
SMOKE_ALGO = {  # a few updates within 320 agent steps
    "dqn": ["algo.learning_starts_steps=100", "algo.train_interval_steps=50", "algo.updates_per_train=2",
            "algo.buffer_capacity_transitions=1000"],
    "ppo": ["env.num_envs=2", "algo.rollout_steps=16", "algo.num_minibatches=2", "algo.update_epochs=1"],
    "a2c": ["env.num_envs=2"],
    "reinforce": [],
    "rainbow": ["algo.learning_starts_steps=100", "algo.train_interval_steps=50", "algo.updates_per_train=2",
                "algo.buffer_capacity_transitions=1000"],
    "sac": ["algo.learning_starts_steps=100", "algo.batch_size=32", "algo.buffer_capacity_transitions=1000"],
    "td3": ["algo.learning_starts_steps=100", "algo.batch_size=32", "algo.buffer_capacity_transitions=1000"],
}
# self-play counts games, not agent steps: its own budget and schedule, and a tiny network
SMOKE_GAMES = ["algo.total_games=8", "algo.concurrent_games=4", "algo.simulations=4", "algo.eval_simulations=4",
               "algo.eval_interval_games=0", "algo.checkpoint_interval_games=0", "algo.train_interval_games=4",
               "algo.updates_per_train=1", "algo.batch_size=8", "network.resnet_blocks=1", "network.resnet_channels=8",
               "network.resnet_value_hidden=8", "logger=none", "logger.progress=none"]


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_runs_a_few_steps(preset, tmp_path):
    algo = preset.split("_")[0]
    if algo == "alphazero":
        summary = run(compose_train([f"experiment={preset}", *SMOKE_GAMES]), tmp_path / "run")
        assert summary["games"] == 8 and (tmp_path / "run" / "checkpoints" / "latest.pt").exists()
        return
    if algo == "rlhf":  # a pipeline of runs: tests/trainers/test_lm.py runs it through `rlexp train`; here, its stages compose
        cfg = compose_train([f"experiment={preset}"])
        assert cfg.algo.name == "rlhf_ppo" and list(cfg.pipeline) == ["pretrain", "sft", "reward_model"]
        for stage, overrides in cfg.pipeline.items():
            stage_cfg = compose_train([f"algo={stage}", "env=arithmetic", *overrides])
            assert stage_cfg.algo.name == stage and stage_cfg.model is not None
        return
    composed = compose_train([f"experiment={preset}", *REQUIRED.get(preset, [])])
    atari, algo = composed.env.type == "atari", composed.algo.name
    extra = [*SMOKE_ALGO[algo], *REQUIRED.get(preset, []), *(["env.max_episode_frames=800"] if atari else [])]
    summary = run(compose_train([f"experiment={preset}", *SMOKE, *extra]), tmp_path / "run")
    assert summary["steps"] == 320 and (tmp_path / "run" / "checkpoints" / "latest.pt").exists()


def test_issue4_presets_exist():
    assert {"reinforce_cartpole", "a2c_cartpole", "ppo_cartpole", "ppo_pendulum", "ppo_pong_schulman2017",
            "a2c_pong_mnih2016"} <= set(PRESETS)


def test_ppo_pendulum_is_continuous_with_rl_zoo_values():
    cfg = compose_train(["experiment=ppo_pendulum"])
    assert cfg.env.id == "Pendulum-v1" and cfg.env.num_envs == 4
    assert (cfg.algo.rollout_steps, cfg.algo.update_epochs, cfg.algo.gamma, cfg.algo.lr) == (1024, 10, 0.9, 1e-3)
    assert cfg.network.action_bound == "clip" and cfg.total_steps == 200_000


def test_mujoco_presets_have_the_papers_values():
    sac = compose_train(["experiment=sac_mujoco_haarnoja2018", "env=walker2d"])
    a = sac.algo
    assert sac.env.id == "Walker2d-v5" and sac.total_steps == 1_000_000 and sac.eval_episodes == 10
    assert (a.lr, a.gamma, a.tau, a.batch_size, a.buffer_capacity_transitions) == (3e-4, 0.99, 0.005, 256, 1_000_000)
    assert (a.target_entropy, a.alpha, a.updates_per_train, a.train_interval_steps) == ("auto", None, 1, 1)
    assert sac.network.hidden_sizes == [256, 256] and sac.network.activation == "relu"
    td3 = compose_train(["experiment=td3_mujoco_fujimoto2018", "env=ant"]).algo
    assert (td3.policy_delay, td3.policy_noise, td3.noise_clip, td3.exploration_noise) == (2, 0.2, 0.5, 0.1)
    assert (td3.learning_starts_steps, td3.n_critics, td3.batch_size) == (25_000, 2, 256)
    ddpg = compose_train(["algo=ddpg", "env=hopper"]).algo
    assert (ddpg.name, ddpg.n_critics, ddpg.policy_noise, ddpg.policy_delay) == ("ddpg", 1, 0.0, 1)
    ppo = compose_train(["experiment=ppo_mujoco_schulman2017"])
    assert (ppo.algo.rollout_steps, ppo.algo.update_epochs, ppo.algo.num_minibatches, ppo.algo.lr) == (2048, 10, 32, 3e-4)
    assert ppo.network.hidden_sizes == [64, 64] and ppo.network.normalize_obs and ppo.env.id == "Hopper-v5"


def test_the_atari_100k_sweep_lists_the_benchmarks_26_games_each_with_scores_to_normalize():
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    from rlexp.config.registry import register_configs
    from rlexp.hydra_front import _is_atari_game
    from rlexp.references import human_normalized, load

    register_configs()
    with initialize_config_module("rlexp.conf", version_base="1.3"):
        cfg = hydra_compose("train", overrides=["experiment=der_atari100k", "sweep=atari100k"], return_hydra_config=True)
    games = cfg.hydra.sweeper.params["env.game"].split(",")
    assert len(games) == len(set(games)) == 26 and all(_is_atari_game(g) for g in games)
    assert all(human_normalized(g, 0.0) is not None for g in games)
    assert set(load("der_atari100k")["algos"]["rainbow"]["scores"]) == set(games)  # DER's published table covers them


def test_the_der_preset_is_dopamines_der_gin():
    cfg = compose_train(["experiment=der_atari100k", "env.game=boxing"])
    a, e = cfg.algo, cfg.env
    assert (cfg.total_steps, cfg.eval_interval_steps, cfg.eval_episodes) == (100_000, 0, 100)
    assert (a.n_step, a.learning_starts_steps, a.train_interval_steps, a.target_update_interval_steps) == (10, 1600, 1, 2000)
    assert (a.lr, a.optimizer_eps, a.batch_size, a.num_atoms, a.v_min, a.v_max) == (1e-4, 1.5e-4, 32, 51, -10.0, 10.0)
    assert a.noisy and a.dueling and a.double_dqn and a.replay == "prioritized" and a.distributional == "c51"
    assert (e.repeat_action_probability, e.life_loss_terminal, e.max_episode_frames) == (0.0, True, 108_000)

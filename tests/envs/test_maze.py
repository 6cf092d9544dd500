import numpy as np
import pytest

from rlexp.config import ConfigError
from rlexp.envs.maze import MazeEnv, parse_layout
from tests.conftest import compose_train

SMALL = """
#####
#S  #
# # #
#  G#
#####
"""


@pytest.mark.parametrize(("layout", "message"), [
    ("#####\n#   #\n#  G#\n#####", "env.layout has no start cell (S); it needs exactly one"),
    ("#####\n#S  #\n#   #\n#####", "env.layout has no goal cell (G); it needs exactly one"),
    ("#####\n#SS #\n#  G#\n#####", "env.layout has 2 start cells (S); it needs exactly one"),
    ("#####\n#S#G#\n#####", "env.layout's goal cannot be reached from the start (1, 1) (row, column); open a path"),
    ("#####\n#S x#\n#  G#\n#####", "env.layout has an unknown character 'x' at row 1, column 3"),
    ("#####\n#S  #\n#  G##\n#####", "env.layout rows have different lengths (5, 5, 6, 5)"),
    ("#######\n#S  # #\n#  G###\n#######", "cell (row 1, column 5) is enclosed: the goal cannot be reached from it"),
    ("\n\n", "env.layout is empty"),
])
def test_bad_layouts_get_one_clear_line(layout, message):
    with pytest.raises(ConfigError) as err:
        parse_layout(layout)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_states_actions_and_the_walls():
    env = MazeEnv(SMALL)
    assert env.observation_space.n == 8 and env.action_space.n == 4  # free cells, row by row
    obs, _ = env.reset(seed=0)
    assert env.cells[obs] == (1, 1)
    assert env.step(0)[0] == obs  # up: a wall, stay (and pay -1)
    obs, reward, terminated, truncated, _ = env.step(1)  # right
    assert env.cells[obs] == (1, 2) and reward == -1.0 and not terminated and not truncated
    for action in (1, 2, 2):  # right, down, down: the goal
        obs, reward, terminated, _, _ = env.step(action)
    assert env.cells[obs] == (3, 3) and terminated


def test_exact_model_matches_the_dynamics_and_slips_sideways():
    env = MazeEnv(SMALL, slip_prob=0.2)
    start = env.start
    outcomes = {env.cells[s]: p for p, s, r, t in env.P[start][1]}  # right from (1, 1)
    assert outcomes == pytest.approx({(1, 2): 0.8, (1, 1): 0.1, (2, 1): 0.1})  # up is a wall: stays
    assert all(sum(p for p, *_ in env.P[s][a]) == pytest.approx(1.0) for s in env.P for a in env.P[s])
    env.reset(seed=3)
    moved = []
    for _ in range(4000):
        env.state = start
        moved.append(env.cells[env.step(1)[0]])
    share = {cell: moved.count(cell) / len(moved) for cell in set(moved)}
    assert share == pytest.approx({(1, 2): 0.8, (1, 1): 0.1, (2, 1): 0.1}, abs=0.025)


def test_renders_rgb_and_ansi():
    env = MazeEnv(SMALL, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (5 * 32, 5 * 32, 3) and frame.dtype == np.uint8
    assert MazeEnv(SMALL, render_mode="ansi").render().splitlines()[1] == "#A  #"


def test_shipped_mazes_compose_and_vectorize():
    from rlexp.envs import make_vector_env, transition_model

    for name, cells in (("maze", 37), ("maze_large", 143)):
        cfg = compose_train([f"env={name}", "algo=q_learning"])
        envs = make_vector_env(cfg.env, num_envs=3)
        obs, _ = envs.reset(seed=0)
        assert envs.single_observation_space.n == cells and obs.tolist() == [0, 0, 0]
        assert transition_model(envs) is envs.unwrapped.envs[0].unwrapped.P
        envs.close()


def test_gymnasium_toy_text_envs_through_the_env_group():
    from rlexp.envs import make_vector_env, transition_model

    for name, states in (("frozenlake", 16), ("cliffwalking", 48), ("taxi", 500)):
        envs = make_vector_env(compose_train([f"env={name}", "algo=q_learning"]).env)
        assert envs.single_observation_space.n == states and transition_model(envs) is not None
        envs.close()

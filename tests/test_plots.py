"""The pictures: the data behind them matches the Q-table, and the PNGs have their size."""

import gymnasium as gym
import numpy as np
import pytest
from PIL import Image

from rlexp import plots
from rlexp.envs.maze import MazeEnv

MAZE = """
#######
#S  # #
# #   #
#   #G#
#######
"""


def _q(env: MazeEnv, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(env.observation_space.n, 4))


def test_arrows_point_along_each_cells_greedy_action():
    env = MazeEnv(MAZE)
    view = plots.grid_view(env)
    q = _q(env)
    q[3] = 0.0  # all actions alike: no arrow
    arrows = plots.policy_arrows(view, q)
    assert arrows[env.goal] is None and arrows[3] is None
    assert all(arrows[s] == int(np.argmax(q[s])) for s in arrows if s not in (env.goal, 3))
    # the drawn quiver: one arrow per such cell, pointing along the move of its greedy action
    fig = plots.draw_policy(view, q)
    quiver = fig.axes[0].collections[-1]
    directions = {(round(x + 0.3 * u), round(y + 0.3 * v)): (u, v)
                  for (x, y), u, v in zip(quiver.get_offsets(), quiver.U, quiver.V)}
    expected = {}
    for s, action in arrows.items():
        if action is not None:
            r, c = env.cells[s]
            dr, dc = view.deltas[action]
            expected[(c, r)] = (dc, dr)
    assert directions == expected and len(expected) == len(env.cells) - 2


def test_values_picture_shows_max_q_of_each_cell():
    env = MazeEnv(MAZE)
    q = _q(env, 1)
    fig = plots.draw_values(plots.grid_view(env), q)
    image = fig.axes[0].images[0].get_array()
    for s, (r, c) in enumerate(env.cells):
        assert image[r, c] == pytest.approx(q[s].max())
    assert np.ma.is_masked(image[0, 0]) or np.isnan(image[0, 0])  # a wall has no value
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert f"{q[5].max():.1f}" in texts


def test_model_data_is_the_most_observed_next_state():
    visits = np.zeros((3, 2), dtype=np.int64)
    transitions = np.zeros((3, 2, 3), dtype=np.int32)
    visits[0, 1], transitions[0, 1] = 10, [0, 7, 3]
    assert plots.likely_next_states(visits, transitions) == {(0, 1): (1, 0.7)}


@pytest.mark.parametrize("name", ["policy", "values", "model"])
def test_pngs_exist_with_the_stated_size(tmp_path, name):
    env = MazeEnv(MAZE)
    q = _q(env)
    visits = np.ones((len(env.cells), 4), dtype=np.int64)
    transitions = np.zeros((len(env.cells), 4, len(env.cells)), dtype=np.int32)
    transitions[:, :, 0] = 1
    figures = plots.run_figures({"q": q, "visits": visits, "transitions": transitions}, env)
    assert set(figures) == {"policy", "values", "model"}
    path = plots.save_figure(figures[name], tmp_path / f"{name}.png")
    panels = 2 if name == "model" else 1
    assert Image.open(path).size == plots.figure_pixels(plots.grid_view(env), panels)
    assert not list(tmp_path.glob("*.tmp"))


def test_frozenlake_and_cliffwalking_are_grids_taxi_is_a_table(tmp_path):
    lake = plots.grid_view(gym.make("FrozenLake-v1"))
    assert (lake.height, lake.width) == (4, 4) and lake.deltas[0] == (0, -1)  # action 0: left
    assert lake.marks[(1, 1)] == "H" and 5 in lake.terminal_states
    cliff = plots.grid_view(gym.make("CliffWalking-v1"))
    assert (cliff.height, cliff.width) == (4, 12) and cliff.marks[(3, 5)] == "C" and cliff.deltas[0] == (-1, 0)
    taxi = gym.make("Taxi-v4")
    assert plots.grid_view(taxi) is None
    figures = plots.run_figures({"q": np.zeros((500, 6))}, taxi)
    assert list(figures) == ["q_table"]
    path = plots.save_figure(figures["q_table"], tmp_path / "q.png")
    assert Image.open(path).size == plots.figure_pixels(None)


def test_function_approximators_get_no_table_pictures():
    assert plots.run_figures({}, None) == {}


def test_learning_curve_draws_train_and_eval():
    fig = plots.draw_learning_curve([(100, -50.0), (200, -20.0)], [(200, -13.0, 0.0)], "q_learning on maze")
    lines = fig.axes[0].get_lines()
    assert [list(line.get_xdata()) for line in lines] == [[100, 200], [200]]

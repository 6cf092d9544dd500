"""A gridworld maze as RL courses draw it: walls ``#``, start ``S``, goal ``G``, -1 per step until the goal.

A state is a free cell (numbered row by row, walls excluded), an action one of up, right,
down, left (gymnasium's CliffWalking order). Moving into a wall leaves the agent in place.
With ``slip_prob`` > 0 a move goes to one of the two perpendicular directions instead
(half of ``slip_prob`` each), as FrozenLake's slippery ice.

Like gymnasium's toy-text envs, the env exposes its exact model as ``P[s][a] = [(prob,
next_state, reward, terminated), ...]``; value iteration plans with it.
"""

from __future__ import annotations

from collections import deque

import gymnasium as gym
import numpy as np

from rlexp.errors import ConfigError

WALL, START, GOAL, FREE = "#", "S", "G", " "
FREE_CHARS = (START, GOAL, FREE, ".")  # "." is a free cell too (easier to see in YAML)
# action -> (row delta, col delta): up, right, down, left
MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))
ACTION_NAMES = ("up", "right", "down", "left")


def parse_layout(text: str) -> list[str]:
    """The layout's rows, checked.

    Raises:
        ConfigError: ragged rows, unknown characters, no (or several) start or goal, a goal
            the start cannot reach, or a free cell from which the goal cannot be reached.
    """
    if "\n" not in text and "\\n" in text:  # from the command line: env.layout='###\n#SG#\n###'
        text = text.replace("\\n", "\n")
    rows = [line.rstrip("\n") for line in text.strip("\n").splitlines()]
    rows = [row for row in rows if row.strip()]
    if not rows:
        raise ConfigError("env.layout is empty; draw the maze with # walls, S start, G goal and spaces")
    widths = {len(row) for row in rows}
    if len(widths) > 1:
        lengths = ", ".join(str(len(row)) for row in rows)
        raise ConfigError(f"env.layout rows have different lengths ({lengths}); every row must be equally long")
    for r, row in enumerate(rows):
        for c, ch in enumerate(row):
            if ch != WALL and ch not in FREE_CHARS:
                raise ConfigError(
                    f"env.layout has an unknown character {ch!r} at row {r}, column {c}; "
                    "use # (wall), S (start), G (goal), space or . (free)"
                )
    for mark, name in ((START, "start"), (GOAL, "goal")):
        count = sum(row.count(mark) for row in rows)
        if count != 1:
            what = "no" if count == 0 else f"{count}"
            raise ConfigError(f"env.layout has {what} {name} cell{'s' if count > 1 else ''} ({mark}); it needs exactly one")
    grid = rows
    goal = next((r, row.index(GOAL)) for r, row in enumerate(grid) if GOAL in row)
    start = next((r, row.index(START)) for r, row in enumerate(grid) if START in row)
    reach = _cells_reaching(grid, goal)
    if start not in reach:
        raise ConfigError(f"env.layout's goal cannot be reached from the start {start} (row, column); open a path")
    for r, row in enumerate(grid):
        for c, ch in enumerate(row):
            if ch != WALL and (r, c) not in reach:
                raise ConfigError(
                    f"env.layout's cell (row {r}, column {c}) is enclosed: the goal cannot be reached from it; "
                    "wall it off with #"
                )
    return grid


def check_config(cfg) -> None:
    """Refuse an ``env=maze`` config (:class:`~rlexp.config.MazeEnvConfig`) whose layout is not a
    maze :class:`MazeEnv` can run (:func:`parse_layout` says why, in one line)."""
    parse_layout(cfg.layout)


def _cells_reaching(grid: list[str], goal: tuple[int, int]) -> set[tuple[int, int]]:
    """Free cells with a path to ``goal`` (moves are reversible, so a search from the goal)."""
    seen = {goal}
    queue = deque([goal])
    while queue:
        r, c = queue.popleft()
        for dr, dc in MOVES:
            nr, nc = r + dr, c + dc
            if 0 <= nr < len(grid) and 0 <= nc < len(grid[0]) and grid[nr][nc] != WALL and (nr, nc) not in seen:
                seen.add((nr, nc))
                queue.append((nr, nc))
    return seen


class MazeEnv(gym.Env):
    """A gridworld maze from a text layout (see the module docstring)."""

    metadata = {"render_modes": ["rgb_array", "ansi"], "render_fps": 8}

    def __init__(self, layout: str, slip_prob: float = 0.0, step_reward: float = -1.0,
                 render_mode: str | None = None, cell_pixels: int = 32):
        self.grid = parse_layout(layout)
        self.height, self.width = len(self.grid), len(self.grid[0])
        self.cells = [(r, c) for r in range(self.height) for c in range(self.width) if self.grid[r][c] != WALL]
        self.index = {cell: i for i, cell in enumerate(self.cells)}
        self.start = next(i for i, (r, c) in enumerate(self.cells) if self.grid[r][c] == START)
        self.goal = next(i for i, (r, c) in enumerate(self.cells) if self.grid[r][c] == GOAL)
        self.slip_prob = float(slip_prob)
        self.step_reward = float(step_reward)
        self.observation_space = gym.spaces.Discrete(len(self.cells))
        self.action_space = gym.spaces.Discrete(len(MOVES))
        self.render_mode = render_mode
        self.cell_pixels = cell_pixels
        self.P = self._model()
        self.state = self.start

    def _move(self, state: int, action: int) -> int:
        r, c = self.cells[state]
        dr, dc = MOVES[action]
        return self.index.get((r + dr, c + dc), state)  # a wall (or the edge) keeps the agent in place

    def _model(self) -> dict[int, dict[int, list[tuple[float, int, float, bool]]]]:
        model: dict[int, dict[int, list[tuple[float, int, float, bool]]]] = {}
        for s in range(len(self.cells)):
            model[s] = {}
            for a in range(len(MOVES)):
                if s == self.goal:  # absorbing; episodes end on arrival, so this is never stepped
                    model[s][a] = [(1.0, s, 0.0, True)]
                    continue
                outcomes: dict[int, float] = {}
                slips = ((a + 1) % 4, (a + 3) % 4)
                for direction, p in ((a, 1.0 - self.slip_prob), (slips[0], self.slip_prob / 2),
                                     (slips[1], self.slip_prob / 2)):
                    if p > 0:
                        nxt = self._move(s, direction)
                        outcomes[nxt] = outcomes.get(nxt, 0.0) + p
                model[s][a] = [(p, nxt, self.step_reward, nxt == self.goal) for nxt, p in outcomes.items()]
        return model

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.state = self.start
        return self.state, {}

    def step(self, action):
        a = int(action)
        if self.slip_prob > 0 and self.np_random.random() < self.slip_prob:
            a = (a + (1 if self.np_random.random() < 0.5 else 3)) % 4
        self.state = self._move(self.state, a)
        terminated = self.state == self.goal
        return self.state, self.step_reward, terminated, False, {}

    def render(self):
        if self.render_mode == "ansi":
            rows = [list(row.replace(START, FREE)) for row in self.grid]
            r, c = self.cells[self.state]
            rows[r][c] = "A"
            return "\n".join("".join(row) for row in rows) + "\n"
        if self.render_mode == "rgb_array":
            return self._rgb()
        return None

    def _rgb(self) -> np.ndarray:
        """The maze as an image: walls dark, goal green, start light blue, the agent an orange disc."""
        k = self.cell_pixels
        image = np.full((self.height * k, self.width * k, 3), 245, dtype=np.uint8)
        colors = {WALL: (40, 44, 52), GOAL: (80, 180, 90), START: (170, 200, 240)}
        for r, row in enumerate(self.grid):
            for c, ch in enumerate(row):
                if ch in colors:
                    image[r * k:(r + 1) * k, c * k:(c + 1) * k] = colors[ch]
        image[::k, :] = 200  # grid lines
        image[:, ::k] = 200
        r, c = self.cells[self.state]
        yy, xx = np.mgrid[0:k, 0:k]
        disc = (yy - k / 2 + 0.5) ** 2 + (xx - k / 2 + 0.5) ** 2 <= (k * 0.35) ** 2
        image[r * k:(r + 1) * k, c * k:(c + 1) * k][disc] = (240, 140, 30)
        return image

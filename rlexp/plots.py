"""The pictures an RL course draws, from a run's data: the greedy policy as arrows on the
grid, the state values as a heat map with numbers, the learned model (visit counts and the
most likely next cell of each action), and the learning curve.

Each picture is built from plain data (``policy_arrows``, ``state_values``, ...) that the
tests check against the Q-table, then drawn with matplotlib's Agg backend (no display).
Figures have a fixed size in pixels (``figure_pixels``), so the PNGs are predictable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np

DPI = 100
CELL_INCHES = 0.6  # one grid cell
MAX_GRID_INCHES = 14.0


@dataclass
class GridView:
    """How an env's discrete states sit on a grid, for drawing."""

    height: int
    width: int
    cell_of_state: list[tuple[int, int]]  # state -> (row, column)
    deltas: list[tuple[int, int]]  # action -> (row delta, column delta)
    marks: dict[tuple[int, int], str] = field(default_factory=dict)  # (row, column) -> "#", "S", "G", "H" or "C"
    terminal_states: set[int] = field(default_factory=set)  # no action is taken there: no arrow

    def inches(self) -> tuple[float, float]:
        """(width, height) of one grid panel, scaled down for big grids."""
        scale = min(1.0, MAX_GRID_INCHES / (self.width * CELL_INCHES))
        return self.width * CELL_INCHES * scale, self.height * CELL_INCHES * scale


def grid_view(env: gym.Env) -> GridView | None:
    """The grid of a maze, FrozenLake or CliffWalking env; None for envs whose states are no grid (Taxi)."""
    from gymnasium.envs.toy_text.cliffwalking import CliffWalkingEnv
    from gymnasium.envs.toy_text.frozen_lake import FrozenLakeEnv

    from rlexp.envs.maze import GOAL, MOVES, START, WALL, MazeEnv

    inner = env.unwrapped
    if isinstance(inner, MazeEnv):
        marks = {(r, c): ch for r, row in enumerate(inner.grid) for c, ch in enumerate(row) if ch in (WALL, START, GOAL)}
        return GridView(inner.height, inner.width, list(inner.cells), list(MOVES), marks, {inner.goal})
    if isinstance(inner, FrozenLakeEnv):
        desc = np.asarray(inner.desc).astype(str)
        h, w = desc.shape
        marks = {(r, c): desc[r, c] for r in range(h) for c in range(w) if desc[r, c] in ("S", "G", "H")}
        terminal = {r * w + c for (r, c), ch in marks.items() if ch in ("G", "H")}
        cells = [(s // w, s % w) for s in range(h * w)]
        return GridView(h, w, cells, [(0, -1), (1, 0), (0, 1), (-1, 0)], marks, terminal)  # left, down, right, up
    if isinstance(inner, CliffWalkingEnv):
        h, w = inner.shape
        marks = {(h - 1, c): "C" for c in range(1, w - 1)}
        marks[(h - 1, 0)], marks[(h - 1, w - 1)] = "S", "G"
        cells = [(s // w, s % w) for s in range(h * w)]
        return GridView(h, w, cells, [(-1, 0), (0, 1), (1, 0), (0, -1)], marks, {(h - 1) * w + w - 1})
    return None


# --------------------------------------------------------------------------- the data behind the pictures


def policy_arrows(view: GridView, q: np.ndarray) -> dict[int, int | None]:
    """state -> its greedy action (argmax_a Q, the first on ties), or None: a terminal
    state, or one whose actions all look alike (never learned about)."""
    arrows: dict[int, int | None] = {}
    for s in range(len(view.cell_of_state)):
        row = q[s]
        arrows[s] = None if s in view.terminal_states or np.all(row == row[0]) else int(np.argmax(row))
    return arrows


def state_values(q: np.ndarray) -> np.ndarray:
    """V(s) = max_a Q(s, a)."""
    return q.max(axis=1)


def likely_next_states(visits: np.ndarray, transitions: np.ndarray) -> dict[tuple[int, int], tuple[int, float]]:
    """(state, action) -> (most often observed next state, its estimated probability), for tried pairs."""
    out = {}
    for s, a in zip(*np.nonzero(visits)):
        counts = transitions[s, a]
        nxt = int(np.argmax(counts))
        out[(int(s), int(a))] = (nxt, float(counts[nxt] / visits[s, a]))
    return out


# --------------------------------------------------------------------------- drawing


def figure_pixels(view: GridView | None, panels: int = 1) -> tuple[int, int]:
    """(width, height) in pixels of a grid figure with ``panels`` side by side (or of a non-grid one)."""
    width, height = _grid_figsize(view, panels)
    return round(width * DPI), round(height * DPI)


def _grid_figsize(view: GridView | None, panels: int) -> tuple[float, float]:
    if view is None:
        return 8.0, 5.0
    w, h = view.inches()
    return panels * (w + 1.2), h + 0.9


def _new_figure(view: GridView | None, panels: int = 1):
    from matplotlib.figure import Figure  # no pyplot: no global state, no display backend

    fig = Figure(figsize=_grid_figsize(view, panels), dpi=DPI)
    axes = [fig.add_subplot(1, panels, i + 1) for i in range(panels)]
    return fig, axes


def _draw_grid(ax, view: GridView, title: str) -> None:
    colors = {"#": "#2c3038", "G": "#50b45a", "H": "#1f4e79", "C": "#8c2d2d"}
    ax.set_xlim(-0.5, view.width - 0.5)
    ax.set_ylim(view.height - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    for (r, c), mark in view.marks.items():
        if mark in colors:
            ax.add_patch(_rect(r, c, colors[mark]))
        if mark in ("S", "G"):
            if mark == "S":  # outlined, so the cell's own colour (value, visits) stays visible
                ax.add_patch(_rect(r, c, "none", edge="#1f5fbf", linewidth=2.0))
            ax.text(c - 0.42, r - 0.42, mark, ha="left", va="top", fontsize=7, fontweight="bold", color="black",
                    zorder=5)


def _rect(r: int, c: int, color: str, edge: str = "#bbbbbb", linewidth: float = 0.5):
    from matplotlib.patches import Rectangle

    return Rectangle((c - 0.5, r - 0.5), 1, 1, facecolor=color, edgecolor=edge, linewidth=linewidth, zorder=2)


def draw_policy(view: GridView, q: np.ndarray, title: str = "greedy policy argmax_a Q(s, a)"):
    """Arrows of the greedy action in every non-terminal cell (one quiver: ``ax.collections``)."""
    fig, (ax,) = _new_figure(view)
    _draw_grid(ax, view, title)
    xs, ys, us, vs = [], [], [], []
    for s, action in policy_arrows(view, q).items():
        if action is None:
            continue
        r, c = view.cell_of_state[s]
        dr, dc = view.deltas[action]
        xs.append(c)
        ys.append(r)
        us.append(dc)
        vs.append(dr)
    if xs:
        # y grows downwards on the image (inverted axis): angles="xy" keeps arrows pointing where they move
        ax.quiver(np.array(xs) - 0.3 * np.array(us), np.array(ys) - 0.3 * np.array(vs), us, vs, angles="xy",
                  scale_units="xy", scale=1 / 0.6, color="#d2691e", width=0.012, headwidth=4)
    return fig


def draw_values(view: GridView, q: np.ndarray, title: str = "state values V(s) = max_a Q(s, a)"):
    """A heat map of V(s) with its number in each cell."""
    fig, (ax,) = _new_figure(view)
    values = state_values(q)
    grid = np.full((view.height, view.width), np.nan)
    for s, (r, c) in enumerate(view.cell_of_state):
        if view.marks.get((r, c)) != "#":
            grid[r, c] = values[s]
    _draw_grid(ax, view, title)
    image = ax.imshow(grid, cmap="viridis", zorder=0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    big = view.width * view.height > 150
    for s, (r, c) in enumerate(view.cell_of_state):
        if view.marks.get((r, c)) == "#":
            continue
        v = values[s]
        text = f"{v:.0f}" if abs(v - round(v)) < 0.05 or abs(v) >= 100 else f"{v:.1f}"
        ax.text(c, r, text, ha="center", va="center", fontsize=5 if big else 7, color="white")
    return fig


def draw_model(view: GridView, visits: np.ndarray, transitions: np.ndarray):
    """Left: visits per state. Right: the learned model, an arrow from each cell to the most
    likely next cell of each tried action (opacity: its estimated probability; a dot: it stays)."""
    fig, (ax_visits, ax_model) = _new_figure(view, panels=2)
    _draw_grid(ax_visits, view, "state visits N(s)")
    counts = np.full((view.height, view.width), np.nan)
    per_state = visits.sum(axis=1)
    for s, (r, c) in enumerate(view.cell_of_state):
        if view.marks.get((r, c)) != "#":
            counts[r, c] = per_state[s]
    image = ax_visits.imshow(np.log10(1 + counts), cmap="magma", zorder=0)
    fig.colorbar(image, ax=ax_visits, fraction=0.046, pad=0.04, label="log10(1 + visits)")
    _draw_grid(ax_model, view, "learned model: likely next cell per action")
    offsets = [(-0.18, 0.0), (0.0, 0.18), (0.18, 0.0), (0.0, -0.18)]
    for (s, a), (nxt, p) in likely_next_states(visits, transitions).items():
        r, c = view.cell_of_state[s]
        nr, nc = view.cell_of_state[nxt]
        dr, dc = offsets[a % 4]
        if (nr, nc) == (r, c):
            ax_model.plot(c + dc, r + dr, "o", color="#444444", alpha=max(p, 0.15), markersize=2)
        else:
            ax_model.annotate("", xy=(nc, nr), xytext=(c + dc, r + dr),
                              arrowprops=dict(arrowstyle="->", color="#1f77b4", alpha=max(p, 0.15), lw=0.8))
    return fig


def draw_q_table(q: np.ndarray, title: str = "Q(s, a)"):
    """States that are no grid (Taxi): the Q-table as a heat map, states down, actions across."""
    fig, (ax,) = _new_figure(None)
    image = ax.imshow(q, aspect="auto", cmap="viridis", interpolation="nearest")
    fig.colorbar(image, ax=ax)
    ax.set_xlabel("action")
    ax.set_ylabel("state")
    ax.set_title(title, fontsize=10)
    return fig


def draw_learning_curve(train: list[tuple[int, float]], evals: list[tuple[int, float, float]], title: str):
    """Training episode returns (window means) and evaluation returns (mean +/- std) against agent steps."""
    fig, (ax,) = _new_figure(None)
    if train:
        steps, returns = zip(*train)
        ax.plot(steps, returns, color="#1f77b4", label="training episodes (mean per log interval)")
    if evals:
        steps, means, stds = (np.array(x) for x in zip(*evals))
        ax.plot(steps, means, "o-", color="#d62728", label="greedy evaluation (mean +/- std)")
        ax.fill_between(steps, means - stds, means + stds, color="#d62728", alpha=0.15)
    ax.set_xlabel("agent steps")
    ax.set_ylabel("episode return")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if train or evals:
        ax.legend(loc="lower right", fontsize=8)
    return fig


def run_figures(tables: dict[str, np.ndarray], env: gym.Env | None) -> dict[str, object]:
    """The pictures of an algorithm's tables (empty for function approximators)."""
    q = tables.get("q")
    if q is None:
        return {}
    view = grid_view(env) if env is not None else None
    if view is None or len(view.cell_of_state) != q.shape[0]:
        return {"q_table": draw_q_table(q)}
    figures = {"policy": draw_policy(view, q), "values": draw_values(view, q)}
    if "visits" in tables and "transitions" in tables:
        figures["model"] = draw_model(view, tables["visits"], tables["transitions"])
    return figures


def save_figure(figure, path: Path) -> Path:
    """Write a PNG atomically (a temporary name, then a rename): no half-written picture."""
    from rlexp.checkpoint import atomic_write

    atomic_write(Path(path), lambda f: figure.savefig(f, format="png", dpi=DPI))
    return Path(path)

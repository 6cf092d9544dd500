"""Pictures of a board-game agent: positions with the network's move probabilities and value,
and the evaluation scores against each opponent over training (matplotlib, headless)."""

from __future__ import annotations

import numpy as np

from rlexp.games.openspiel import GameSpec, legal_mask

DPI = 100


def move_probabilities(logits: np.ndarray, state, spec: GameSpec) -> np.ndarray:
    """The network's policy over the legal moves of ``state`` (0 elsewhere)."""
    mask = legal_mask(state, spec.num_actions)
    z = np.where(mask, logits - logits[mask].max(), -np.inf)
    p = np.exp(z)
    return p / p.sum()


def board_grid(probs: np.ndarray, spec: GameSpec) -> np.ndarray | None:
    """The probabilities laid out as the board where the actions are its cells (tic-tac-toe,
    hex, go without the pass) or its columns (connect four); None otherwise."""
    if len(spec.obs_shape) != 3:
        return None
    _, h, w = spec.obs_shape
    if spec.num_actions in (h * w, h * w + 1):
        return probs[: h * w].reshape(h, w)
    if spec.num_actions == w:
        return np.tile(probs, (h, 1)) * (np.arange(h)[:, None] == 0)  # a row of column choices above the board
    return None


def draw_positions(states: list, logits: np.ndarray, values: np.ndarray, spec: GameSpec, title: str):
    """One panel per position: the board as OpenSpiel prints it, beside the move probabilities
    (on the board where the actions map onto it, else as bars), and the value for the player to move."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(states), 4.4), dpi=DPI)
    fig.suptitle(title, fontsize=9)
    for k, (state, row, value) in enumerate(zip(states, logits, values)):
        probs = move_probabilities(row, state, spec)
        text_ax = fig.add_subplot(2, len(states), k + 1)
        text_ax.axis("off")
        text_ax.text(0.0, 1.0, str(state), family="monospace", fontsize=8, va="top")
        text_ax.set_title(f"player {state.current_player()} to move, value {value:+.2f}", fontsize=8)
        ax = fig.add_subplot(2, len(states), len(states) + k + 1)
        grid = board_grid(probs, spec)
        if grid is not None:
            ax.imshow(grid, cmap="Blues", vmin=0, vmax=max(float(grid.max()), 1e-6))
            for (r, c), p in np.ndenumerate(grid):
                if p >= 0.005:
                    ax.text(c, r, f"{p:.2f}", ha="center", va="center", fontsize=7)
            ax.set_xticks([]), ax.set_yticks([])
        else:
            legal = np.flatnonzero(probs)
            ax.bar(range(len(legal)), probs[legal])
            ax.set_xticks(range(len(legal)), [state.action_to_string(state.current_player(), a) for a in legal],
                          rotation=90, fontsize=6)
        ax.set_title("move probabilities (network)", fontsize=8)
    fig.tight_layout()
    return fig


def draw_score_curves(curves: dict[str, list[list[float]]], title: str):
    """Evaluation score (wins + draws / 2) against each opponent, over games of training."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), dpi=DPI)
    ax = fig.add_subplot(1, 1, 1)
    for name, points in curves.items():
        games, scores = zip(*points)
        ax.plot(games, scores, marker="o", label=f"vs {name}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("self-play games")
    ax.set_ylabel("score (win + draw / 2)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return fig

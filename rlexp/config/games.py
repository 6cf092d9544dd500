"""Schemas of the board-game family: AlphaZero and the OpenSpiel game it plays.

The game string is checked against OpenSpiel's rules when a run is built
(``rlexp.games.openspiel.check_config``), not here: reading a config loads no game library."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from omegaconf import MISSING

from rlexp.config.checks import non_negative, one_of, positive, unit_interval
from rlexp.errors import ConfigError


@dataclass
class AlphaZeroConfig:
    """AlphaZero (Silver et al. 2017/2018): self-play with tree search, a policy-value network
    trained on the searches' policies and the games' outcomes. Progress counts games."""

    name: str = "alphazero"  # registry key in rlexp.config.ALGOS
    total_games: int = 2_000  # self-play games to play (the budget)
    log_interval_games: int = 100  # games between aggregated metric events
    eval_interval_games: int = 500  # games between evaluations; 0 evaluates only at the end
    checkpoint_interval_games: int = 500  # games between periodic checkpoints; 0 saves only the last
    concurrent_games: int = 64  # self-play games played at once (their leaves share one network call)
    simulations: int = 50  # search simulations per self-play move
    eval_simulations: int = 0  # simulations per move when evaluating or playing; 0: as in self-play
    root_search: str = "puct"  # puct (Dirichlet noise, visit-count target) or gumbel (Danihelka et al. 2022)
    c_puct: float = 1.25  # PUCT exploration constant (AlphaZero pseudocode: c_init 1.25)
    dirichlet_alpha: float = 0.3  # root noise concentration (AlphaZero: 0.3 chess, 0.15 shogi, 0.03 Go)
    dirichlet_fraction: float = 0.25  # share of the root prior replaced by noise (AlphaZero: 0.25)
    temperature_moves: int = 10  # self-play moves per game sampled in proportion to visits (then the most visited)
    gumbel_considered_actions: int = 16  # gumbel: root actions sampled without replacement (mctx default 16)
    gumbel_c_visit: float = 50.0  # gumbel: sigma(q) = (c_visit + max N) * c_scale * q (mctx default 50)
    gumbel_c_scale: float = 0.1  # gumbel: see gumbel_c_visit (mctx default 0.1)
    replay_window_positions: int = 50_000  # positions kept for training, newest replace oldest
    batch_size: int = 256  # positions per gradient step
    lr: float = 1e-3  # Adam learning rate
    weight_decay: float = 1e-4  # L2 regularization of the weights (AlphaZero: 1e-4)
    value_loss_coef: float = 1.0  # weight of the value MSE against the policy cross-entropy (AlphaZero: 1)
    max_grad_norm: Optional[float] = None  # gradient-norm clip; null disables
    train_interval_games: int = 64  # finished self-play games between training phases
    updates_per_train: int = 32  # gradient steps in each training phase
    learning_starts_positions: int = 512  # positions in the window before the first update
    augment: str = "none"  # none, or mirror: also learn each position flipped left-right (games whose rules are symmetric so)
    eval_games: int = 40  # games per opponent and evaluation (half as first player)
    eval_opponents: List[str] = field(default_factory=lambda: ["random"])  # random, mcts or perfect, during training
    mcts_opponent_simulations: int = 1_000  # the mcts opponent's random-rollout simulations per move
    figure_positions: int = 4  # positions drawn with the policy and value in the pictures

    def __post_init__(self) -> None:
        o = "algo"
        positive(o, total_games=self.total_games, log_interval_games=self.log_interval_games,
                  concurrent_games=self.concurrent_games, simulations=self.simulations, c_puct=self.c_puct,
                  dirichlet_alpha=self.dirichlet_alpha, replay_window_positions=self.replay_window_positions,
                  batch_size=self.batch_size, lr=self.lr, train_interval_games=self.train_interval_games,
                  updates_per_train=self.updates_per_train, eval_games=self.eval_games,
                  mcts_opponent_simulations=self.mcts_opponent_simulations,
                  gumbel_considered_actions=self.gumbel_considered_actions, gumbel_c_visit=self.gumbel_c_visit,
                  gumbel_c_scale=self.gumbel_c_scale)
        non_negative(o, eval_interval_games=self.eval_interval_games, eval_simulations=self.eval_simulations,
                      checkpoint_interval_games=self.checkpoint_interval_games, temperature_moves=self.temperature_moves,
                      weight_decay=self.weight_decay, value_loss_coef=self.value_loss_coef,
                      learning_starts_positions=self.learning_starts_positions, figure_positions=self.figure_positions)
        unit_interval(o, dirichlet_fraction=self.dirichlet_fraction)
        one_of(o, "root_search", self.root_search, ("puct", "gumbel"))
        one_of(o, "augment", self.augment, ("none", "mirror"))
        if self.max_grad_norm is not None:
            positive(o, max_grad_norm=self.max_grad_norm)
        for opponent in self.eval_opponents:
            one_of(o, "eval_opponents", opponent, ("random", "mcts", "perfect", "untrained"))
        if self.batch_size > self.replay_window_positions:
            raise ConfigError(f"algo.batch_size={self.batch_size} is larger than the replay window "
                              f"(algo.replay_window_positions={self.replay_window_positions}); lower one or raise the other")



@dataclass
class GameEnvConfig:
    """A two-player board game from OpenSpiel (zero-sum, perfect information, deterministic)."""

    type: str = "openspiel"  # env builder: openspiel
    game: str = MISSING  # OpenSpiel game string: name or name(param=value,...), e.g. breakthrough(rows=6,columns=6)
    id: str = ""  # the name in run directories and titles; empty: the game string

    def __post_init__(self) -> None:
        if not self.id:
            self.id = self.game.replace(" ", "")

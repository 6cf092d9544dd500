"""The gym-stepping family: an algorithm acting in a gymnasium vector env, one transition per
env per step (DQN and its Rainbow parts, PPO, A2C, REINFORCE, SAC, TD3, DDPG, Q-learning, SARSA,
value iteration).

Each ``advance`` is one vector step: act, step the env stack, hand the transition to the
algorithm. The env stack (``rlexp.envs``) has already turned the env's outputs into learning
signals and recorded the real episodes; this trainer reads episodes from the stats and knows
no env by name. Progress is counted in agent steps (every env copy's step counts).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlexp.budget import STEPS
from rlexp.build import MAX_EVAL_ENVS, build_algorithm, eval_seed
from rlexp.config import GameEnvConfig, TaskEnvConfig, TrainConfig
from rlexp.envs import ActionLog, failing_env_index, make_env, make_vector_env, obs_digest
from rlexp.errors import ConfigError
from rlexp.evaluation import evaluate
from rlexp.networks import is_image_space
from rlexp.trainers.base import Evaluation, Trainer, TrainerFault
from rlexp.video import record_episode, render_env_for_video

# device.* settings that slow the MLP (classic-control) runs on a CPU, said at the start instead of
# silently costing time; scripts/bench_dqn_cartpole.py and scripts/bench_ppo.py --variants amp
# compile measure it (the README has the figures). On the Atari CNN device.amp speeds a CPU with
# bfloat16 units (AMX) up: no note there.
CPU_SETTING_NOTES = {
    "amp": "note: device.amp on a CPU slows the MLP networks down (the README's performance section has the "
           "measured ratios): bfloat16 has no gain on their small matrices, and it turns off the hand-written "
           "MLP gradient; it pays on a GPU, and on a CPU for the Atari CNN",
    "compile": "note: device.compile on a CPU slows the MLP runs down (the README's performance section has the "
               "measured ratios): compiling costs more than it saves on small networks, and it turns off "
               "the hand-written MLP gradient; it pays on a GPU for long runs",
}

# what a checkpoint keeps of the loop's own bookkeeping (besides the algorithm and the envs)
COUNTERS = ("progress", "episodes", "window_returns", "window_lengths", "curve_train", "curve_eval")


class GymTrainer(Trainer):
    """Drives an :class:`~rlexp.algos.base.Algorithm` through a gymnasium vector env."""

    budget = STEPS
    score_name = "eval_return"
    rate_metric = "perf/sps"

    def __init__(self, cfg: TrainConfig, device: torch.device):
        if isinstance(cfg.env, GameEnvConfig):
            raise ConfigError(f"algo={cfg.algo.name} steps gymnasium envs; env={cfg.env.id} is an OpenSpiel board "
                              "game: use algo=alphazero")
        if isinstance(cfg.env, TaskEnvConfig):
            raise ConfigError(f"algo={cfg.algo.name} steps gymnasium envs; env={cfg.env.id} is a language-model task: "
                              "use algo=pretrain, sft or reward_model")
        self.cfg, self.device = cfg, device
        self.schedule = self.budget.schedule(cfg)
        self.eval_envs = self._picture_env = None
        self.envs = make_vector_env(cfg.env, learning=True)
        try:
            self.eval_envs = make_vector_env(cfg.env, num_envs=min(cfg.eval_episodes, MAX_EVAL_ENVS))
            self.algo = build_algorithm(cfg, self.envs, device)
            if cfg.logger.video_interval_evals:  # an env that cannot render is refused now, not at the first video
                render_env_for_video(cfg.env, cfg.seed).close()
        except BaseException:
            self.close()
            raise
        self.num_envs = cfg.env.num_envs
        self.actions = ActionLog(self.envs.single_action_space)  # replayed on resume to restore the envs
        self.obs: np.ndarray | None = None  # what the next step acts on
        self.progress = 0
        self.episodes = 0  # training episodes finished
        self.window_returns: list[float] = []  # episodes finished since the last log event
        self.window_lengths: list[int] = []
        self.curve_train: list[list[float]] = []  # (step, mean training return) per log event
        self.curve_eval: list[list[float]] = []  # (step, eval mean, eval std) per evaluation
        self.pictures_due = None
        self._picture_interval = cfg.logger.figure_interval_episodes if cfg.logger.figures else 0
        self._saved_digest: str | None = None  # the observation digest of the checkpoint resumed from

    # ------------------------------------------------------------------ the work

    eval_options = ("episodes", "video", "video_episodes")

    @classmethod
    def evaluate_saved(cls, run_dir: str, checkpoint: str, seed: int | None, device: str, trust: bool,
                       episodes: int | None = None, video: bool = False,
                       video_episodes: int | None = None) -> tuple[dict[str, Any], list[str]]:
        """Returns over ``episodes`` episodes (default: the run's eval_episodes), with
        ``video_episodes`` (default 1) recorded as mp4 files when ``video``."""
        from rlexp.evaluation import describe_episodes
        from rlexp.runs import evaluate_run

        if video_episodes is not None and not video:
            raise ConfigError("--video-episodes sets how many episodes --video records; add --video")
        record = evaluate_run(run_dir, checkpoint=checkpoint, episodes=episodes, seed=seed,
                              video_episodes=(1 if video_episodes is None else video_episodes) if video else 0,
                              device=device, trust=trust)
        return record, describe_episodes(Path(run_dir), record)

    def start(self, resumed: bool) -> list[str]:
        obs, _ = self.envs.reset(seed=self.cfg.seed)
        small = not is_image_space(self.envs.single_observation_space)  # an MLP, not the Atari CNN
        notes = [CPU_SETTING_NOTES[key] for key in CPU_SETTING_NOTES
                 if self.device.type == "cpu" and small and getattr(self.cfg.device, key)]
        if self.device.type == "cpu" and self.cfg.device.replay != "auto":
            notes.append(f"note: device.replay={self.cfg.device.replay} changes nothing on a CPU run: the replay is in "
                         "host memory either way (it chooses between GPU and pinned host memory)")
        if self._saved_digest is not None:
            started = time.perf_counter()
            obs = self.actions.replay(self.envs, obs)
            if len(self.actions):
                notes.append(f"restored the envs by replaying {len(self.actions) * self.num_envs:,} agent steps of "
                             f"actions in {time.perf_counter() - started:.1f}s")
            if obs_digest(obs) != self._saved_digest:
                notes.append("warning: replaying the logged actions did not reproduce the envs' saved state (the env "
                             "is not deterministic given its seed and actions); training continues from the replayed "
                             "state, so this run is no longer identical to an uninterrupted one")
        self.obs = obs
        self.algo.clock.reset()
        return notes

    def advance(self) -> dict[str, float]:
        """One vector step: act, step the envs, learn from the transition."""
        obs, step, clock = self.obs, self.progress, self.algo.clock
        clock.lap("other")  # the lifecycle's time since the last step: logging, evaluations, checkpoints
        actions = self.algo.act(obs, step)
        clock.lap("acting")
        try:
            next_obs, rewards, terminated, truncated, infos = self.envs.step(actions)
        except Exception as err:  # noqa: BLE001 - any env failure: named, and the run checkpointed
            index = failing_env_index(err)
            raise TrainerFault(f"env {index}" if index is not None else "an env", err) from err
        self.actions.append(actions)
        ended = infos.get("_episode")  # where an episode really ended (the env stack's statistics)
        real_next = next_obs
        if ended is None:
            ended = np.zeros(self.num_envs, dtype=bool)
        else:
            # SAME_STEP autoreset: next_obs already starts the next episode; the learner
            # needs the real last observation to bootstrap a truncated episode
            real_next = self._episodes_ended(ended, next_obs, infos)
        clock.lap("env")
        update = self.algo.observe(obs, actions, rewards, real_next, terminated, truncated, step, ended)
        clock.lap("update")
        self.progress, self.obs = step + self.num_envs, next_obs
        return update

    def _episodes_ended(self, ended: np.ndarray, next_obs: np.ndarray, infos: dict) -> np.ndarray:
        """Count the finished episodes; the real last observations in place of the reset ones."""
        real_next = next_obs.copy()
        stats, before = infos["episode"], self.episodes
        for i in np.flatnonzero(ended):
            real_next[i] = infos["final_obs"][i]
            self.window_returns.append(float(stats["r"][i]))
            self.window_lengths.append(int(stats["l"][i]))
            self.episodes += 1
        every = self._picture_interval
        if every and self.episodes // every > before // every:
            self.pictures_due = f"_episode{self.episodes // every * every}"
        return real_next

    def log_metrics(self) -> dict[str, float]:
        metrics = {"train/episodes": float(self.episodes)}
        if self.window_returns:
            metrics["train/episode_return"] = float(np.mean(self.window_returns))
            metrics["train/episode_length"] = float(np.mean(self.window_lengths))
            self.curve_train.append([self.progress, metrics["train/episode_return"]])
            self.window_returns.clear()
            self.window_lengths.clear()
        metrics.update(self.algo.schedules(self.progress))
        return metrics

    # ------------------------------------------------------------------ evaluation and pictures

    def evaluate(self, index: int) -> Evaluation:
        c = self.cfg
        returns, lengths = evaluate(self.algo.predict, self.eval_envs, c.eval_episodes,
                                    eval_seed(c.seed, index, c.eval_episodes))
        mean, std = float(returns.mean()), float(returns.std())
        self.curve_eval.append([self.progress, mean, std])
        protocol = self.summary().get("protocol")
        return Evaluation(
            score=mean, score_std=std,
            metrics={"eval/episode_return": mean, "eval/episode_return_std": std,
                     "eval/episode_length": float(lengths.mean()), "eval/episodes": float(len(returns))},
            text=f"eval return {mean:.1f} +/- {std:.1f} over {len(returns)} episodes"
            + (f", protocol {protocol}" if protocol else ""),
        )

    def record_video(self, path: Path, index: int) -> dict[str, float]:
        env = make_env(self.cfg.env, render_mode="rgb_array")
        try:
            episode_return, _ = record_episode(self.algo.predict, env, path,
                                               eval_seed(self.cfg.seed, index, self.cfg.eval_episodes))
        finally:
            env.close()
        return {"eval/video_episode_return": episode_return}

    def figures(self, final: bool) -> dict[str, Any]:
        """The algorithm's tables (tabular methods: policy, values, model) drawn on the env, and
        at the end the learning curve."""
        from rlexp import plots  # matplotlib: imported only when drawing

        tables = self.algo.tables()
        if tables and self._picture_env is None:
            self._picture_env = make_env(self.cfg.env)
        figures = plots.run_figures(tables, self._picture_env)
        if final:
            title = f"{self.cfg.algo.name} on {self.cfg.env.id}, seed {self.cfg.seed}"
            figures["learning_curve"] = plots.draw_learning_curve(
                [tuple(x) for x in self.curve_train], [tuple(x) for x in self.curve_eval], title)
        return figures

    def summary(self) -> dict[str, Any]:
        protocol = getattr(self.cfg.env, "protocol", None)  # every Atari score carries its evaluation protocol
        split = {phase: round(seconds, 3) for phase, seconds in self.algo.clock.seconds.items()}
        return {"episodes": self.episodes, **({"protocol": protocol} if protocol is not None else {}),
                "time_split_s": split,  # this session's seconds per phase (rlexp.timing)
                "update_path": self.algo.update_path}  # the gradient's path: hand-written (device.fast_path) or autograd

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {"algo": self.algo.state_dict(), "env_actions": self.actions.tensor(),
                "obs_digest": obs_digest(self.obs), **{k: getattr(self, k) for k in COUNTERS}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.algo.load_state_dict(state["algo"])
        self.actions.load(state["env_actions"])
        self._saved_digest = state["obs_digest"]
        for key in COUNTERS:
            setattr(self, key, state[key])

    def buffer_state(self) -> dict[str, Any] | None:
        return self.algo.buffer_state()

    def load_buffer_state(self, state: dict[str, Any]) -> None:
        self.algo.load_buffer_state(state)

    def non_finite(self) -> str:
        return self.algo.non_finite()

    def close(self) -> None:
        for env in (getattr(self, "envs", None), self.eval_envs, self._picture_env):
            if env is not None:
                env.close()

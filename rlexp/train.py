"""Training: ``run(cfg, run_dir)`` is a plain function; ``main`` is the ``@hydra.main`` entry.

Data flows one way: config -> builders (envs, algorithm) -> loop -> sinks (metrics.jsonl,
W&B, console, checkpoints). Everything that can reject the config is built before the run
directory gets its first file, so bad input leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import random
import shlex
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from rlexp.algos import ALGOS
from rlexp.checkpoint import save_best_checkpoint, save_checkpoint
from rlexp.config import ConfigError, DeviceConfig, TrainConfig, to_typed
from rlexp.envs import make_env, make_vector_env, transition_model
from rlexp.evaluation import evaluate
from rlexp.loggers import ConsoleLogger, JsonlLogger, WandbLogger
from rlexp.sweeps import JOB_LOG, make_optuna_resumable, write_job_summary
from rlexp.video import record_episode

make_optuna_resumable()  # before Hydra builds a sweeper (rlexp train -m sweep=..._optuna)

EVAL_SEED_OFFSET = 1_000_000  # eval envs get seeds far from the training envs'
MAX_EVAL_ENVS = 16


def resolve_device(cfg: DeviceConfig) -> torch.device:
    """``auto`` -> CUDA when torch sees a GPU, else CPU; explicit requests are checked.

    Raises:
        ConfigError: the requested device is not available here.
    """
    kind = cfg.type
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind.startswith("cuda"):
        if not torch.cuda.is_available():
            why = "this torch is a CPU-only build" if torch.version.cuda is None else "torch sees no CUDA GPU"
            raise ConfigError(f"device={kind} is not available ({why}); valid choices here: auto, cpu")
        index = int(kind.split(":")[1]) if ":" in kind else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device={kind} does not exist; this machine has {torch.cuda.device_count()} CUDA device(s)")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device=mps is not available; valid choices here: auto, cpu")
    return torch.device(kind)


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)


@dataclass
class RunInfo:
    """What the caller knows about the run that the config does not."""

    command: str = "rlexp train"  # the command that reproduces this run
    overrides: tuple[str, ...] = ()  # the Hydra overrides of this run
    wandb_group: str | None = None  # default W&B group (a multirun's sweep name)


def run(cfg: TrainConfig, run_dir: Path, info: RunInfo | None = None) -> dict[str, Any]:
    """Train ``cfg.algo`` on ``cfg.env``, writing everything into ``run_dir``.

    Returns:
        A summary: final eval return mean/std, agent steps, wall time, run directory.

    Raises:
        ConfigError: the config cannot run here; nothing has been written to ``run_dir``.
    """
    info = info or RunInfo()
    run_dir = Path(run_dir)
    if (run_dir / "metrics.jsonl").exists():
        raise ConfigError(f"run directory {run_dir} already holds a run; choose another hydra.run.dir")

    # ---- build (everything that can refuse the config, before any file is written)
    device = resolve_device(cfg.device)
    if cfg.device.torch_threads > 0:
        torch.set_num_threads(cfg.device.torch_threads)
    torch.set_flush_denormal(cfg.device.flush_denormal)
    seed_everything(cfg.seed, cfg.device.deterministic)
    if cfg.algo.name not in ALGOS:
        raise ConfigError(f"algo.name={cfg.algo.name!r} is not registered; valid choices: {', '.join(ALGOS)}")
    envs = make_vector_env(cfg.env)
    eval_envs = None
    try:
        eval_envs = make_vector_env(cfg.env, num_envs=min(cfg.eval_episodes, MAX_EVAL_ENVS))
        algo = ALGOS[cfg.algo.name](
            cfg.algo,
            envs.single_observation_space,
            envs.single_action_space,
            cfg.network,
            device,
            cfg.seed,
            cfg.env.num_envs,
            compute=cfg.device,
            total_steps=cfg.total_steps,
            env_model=transition_model(envs),
        )
        return _loop(cfg, run_dir, info, envs, eval_envs, algo)
    finally:
        envs.close()
        if eval_envs is not None:
            eval_envs.close()


def _write_run_files(cfg: TrainConfig, run_dir: Path, info: RunInfo) -> dict[str, Any]:
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(resolved))
    (run_dir / "overrides.yaml").write_text(OmegaConf.to_yaml(list(info.overrides)))
    (run_dir / "command.txt").write_text(info.command + "\n")
    return resolved


def _loop(cfg: TrainConfig, run_dir: Path, info: RunInfo, envs, eval_envs, algo) -> dict[str, Any]:
    resolved = _write_run_files(cfg, run_dir, info)
    console = ConsoleLogger(cfg.logger.progress, cfg.total_steps, f"{cfg.algo.name} {cfg.env.id} seed={cfg.seed}")
    sinks: list[Any] = [JsonlLogger(run_dir / "metrics.jsonl"), console]
    figure_env = None  # a single env for the tabular pictures, built on first use
    try:
        wandb_on = cfg.logger.wandb.mode != "disabled"
        wandb_sink = WandbLogger(cfg.logger.wandb, run_dir, resolved, info.wandb_group) if wandb_on else None
        if wandb_sink is not None:
            sinks.append(wandb_sink)

        def log(step: int, metrics: dict[str, float]) -> None:
            for sink in sinks:
                sink.log(step, metrics)

        num_envs = cfg.env.num_envs
        eval_index = 0

        best = {"eval_return": -float("inf"), "step": 0}

        def checkpoint_state(step: int) -> dict[str, Any]:
            return {"algo": algo.state_dict(), "step": step, "config": resolved}

        side_s = 0.0  # wall time spent in evaluations and checkpoints, not training

        def run_eval(step: int) -> tuple[float, float]:
            nonlocal eval_index, side_s
            started = time.perf_counter()
            seed = cfg.seed + EVAL_SEED_OFFSET + eval_index * cfg.eval_episodes
            returns, lengths = evaluate(algo.predict, eval_envs, cfg.eval_episodes, seed)
            eval_index += 1
            mean, std = float(returns.mean()), float(returns.std())
            curve_eval.append((step, mean, std))
            log(step, {"eval/episode_return": mean, "eval/episode_return_std": std,
                       "eval/episode_length": float(lengths.mean()), "eval/episodes": float(len(returns))})
            if cfg.logger.video_interval_evals and (eval_index - 1) % cfg.logger.video_interval_evals == 0:
                record_video(step, seed)
            if mean > best["eval_return"]:  # DQN's returns oscillate: keep the best policy too
                best.update(eval_return=mean, step=step)
                save_best_checkpoint(run_dir / "checkpoints", checkpoint_state(step))
            side_s += time.perf_counter() - started
            return mean, std

        def record_video(step: int, seed: int) -> None:
            env = make_env(cfg.env, render_mode="rgb_array")
            try:
                path = run_dir / "videos" / f"train_step{step}.mp4"
                episode_return, _ = record_episode(algo.predict, env, path, seed)
            finally:
                env.close()
            if wandb_sink is not None:
                wandb_sink.log_video(step, "eval/video", path)
            log(step, {"eval/video_episode_return": episode_return})

        curve_train: list[tuple[int, float]] = []  # (step, mean training episode return per log interval)
        curve_eval: list[tuple[int, float, float]] = []  # (step, eval mean, eval std)

        def draw_figures(step: int, suffix: str = "", curve: bool = False) -> list[str]:
            """The run's pictures (algorithm tables, learning curve) -> figures/*.png and W&B."""
            nonlocal side_s, figure_env
            from rlexp import plots  # matplotlib: imported only when drawing

            started = time.perf_counter()
            tables = algo.tables()
            if tables and figure_env is None:
                figure_env = make_env(cfg.env)
            figures = plots.run_figures(tables, figure_env)
            if curve:
                title = f"{cfg.algo.name} on {cfg.env.id}, seed {cfg.seed}"
                figures["learning_curve"] = plots.draw_learning_curve(curve_train, curve_eval, title)
            for name, figure in figures.items():
                path = plots.save_figure(figure, run_dir / "figures" / f"{name}{suffix}.png")
                if wandb_sink is not None:
                    wandb_sink.log_image(step, f"figures/{name}", path)
            side_s += time.perf_counter() - started
            return list(figures)

        def checkpoint(step: int, periodic: bool) -> None:
            nonlocal side_s
            started = time.perf_counter()
            save_checkpoint(run_dir / "checkpoints", checkpoint_state(step), step, periodic)
            side_s += time.perf_counter() - started

        obs, _ = envs.reset(seed=cfg.seed)
        ep_return = np.zeros(num_envs)
        ep_length = np.zeros(num_envs, dtype=np.int64)
        window_returns: list[float] = []
        window_lengths: list[int] = []
        episodes = 0
        last_update: dict[str, float] = {}
        step = 0
        start = last_time = time.perf_counter()
        last_step = 0
        eval_mean, eval_std = float("nan"), float("nan")
        intervals = cfg.logger.log_interval_steps, cfg.eval_interval_steps, cfg.checkpoint_interval_steps

        while step < cfg.total_steps:
            actions = algo.act(obs, step)
            next_obs, rewards, terminated, truncated, infos = envs.step(actions)
            ep_return += rewards
            ep_length += 1
            done = terminated | truncated
            real_next = next_obs
            if done.any():
                # SAME_STEP autoreset: next_obs already starts the next episode; the learner
                # needs the real last observation to bootstrap a truncated episode.
                real_next = next_obs.copy()
                for i in np.flatnonzero(done):
                    real_next[i] = infos["final_obs"][i]
                    window_returns.append(float(ep_return[i]))
                    window_lengths.append(int(ep_length[i]))
                    ep_return[i] = 0.0
                    ep_length[i] = 0
                    episodes += 1
            # learning signals: clipped rewards, a lost life as terminal (Atari); logged
            # returns above stay the real score
            learn_rewards = np.clip(rewards, -1.0, 1.0) if cfg.env.clip_rewards else rewards
            life_loss = infos.get("life_loss")
            learn_terminated = terminated | life_loss if life_loss is not None else terminated
            update = algo.observe(obs, actions, learn_rewards, real_next, learn_terminated, truncated, step, done)
            if update:
                last_update = update
            every = cfg.logger.figure_interval_episodes
            if every and cfg.logger.figures and done.any() and episodes // every > (episodes - done.sum()) // every:
                draw_figures(step + num_envs, suffix=f"_episode{episodes // every * every}")
            prev, step, obs = step, step + num_envs, next_obs

            log_due, eval_due, ckpt_due = (k > 0 and step // k > prev // k for k in intervals)
            if log_due:
                now = time.perf_counter()
                metrics = {"perf/sps": (step - last_step) / (now - last_time), "train/episodes": float(episodes)}
                if window_returns:
                    metrics["train/episode_return"] = float(np.mean(window_returns))
                    curve_train.append((step, metrics["train/episode_return"]))
                    metrics["train/episode_length"] = float(np.mean(window_lengths))
                    window_returns.clear()
                    window_lengths.clear()
                metrics.update(algo.schedules(step))
                metrics.update(last_update)
                log(step, metrics)
                last_time, last_step = time.perf_counter(), step
            if eval_due and step < cfg.total_steps:
                eval_mean, eval_std = run_eval(step)
            if ckpt_due and step < cfg.total_steps:
                checkpoint(step, periodic=True)

        eval_mean, eval_std = run_eval(step)
        checkpoint(step, periodic=cfg.checkpoint_interval_steps > 0)
        drawn = draw_figures(step, curve=True) if cfg.logger.figures else []
        wall_s = time.perf_counter() - start
        summary = {
            "run_dir": str(run_dir),
            "steps": step,
            "episodes": episodes,
            "wall_s": wall_s,
            "train_wall_s": wall_s - side_s,  # without evaluations and checkpoints
            "eval_return_mean": eval_mean,
            "eval_return_std": eval_std,
            "best_eval_return": best["eval_return"],
            "best_eval_step": best["step"],
        }
        protocol = getattr(cfg.env, "protocol", None)
        if protocol is not None:  # every Atari score carries its evaluation protocol
            summary["protocol"] = protocol
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        console.close()
        console.message(
            f"done: {step} agent steps in {wall_s:.1f}s; final eval return {eval_mean:.1f} +/- {eval_std:.1f} "
            f"over {cfg.eval_episodes} episodes (best {best['eval_return']:.1f} at step {best['step']})"
            + (f", protocol {protocol}" if protocol else "") + "\n"
            f"run directory: {run_dir}\n"
            "  config.yaml, command.txt  what ran, and how to run it again\n"
            "  metrics.jsonl             one JSON object per log event (train/, eval/, loss/, perf/)\n"
            "  checkpoints/              latest.pt, best.pt (best eval) and periodic step_<N>.pt\n"
            + (f"  figures/                  {', '.join(f'{n}.png' for n in drawn)}\n" if drawn else "")
            + ("  wandb/                    the W&B run (`wandb sync` uploads an offline run)" if wandb_on else "")
        )
        return summary
    finally:
        if figure_env is not None:
            figure_env.close()
        for sink in sinks:
            sink.close()


# --------------------------------------------------------------------------- Hydra entry


def _remove_if_empty(path: Path, stop: Path) -> None:
    """rmdir ``path`` and its parents up to (not including) ``stop`` while they are empty."""
    path, stop = path.resolve(), stop.resolve()
    while path != stop:
        try:
            path.rmdir()  # only ever removes an empty directory
        except OSError:
            return
        path = path.parent
        if stop not in path.parents:
            return


class _Tee:
    """A text stream that writes to ``stream`` and keeps a copy (a job's log)."""

    def __init__(self, stream, copy: io.StringIO):
        self._stream, self._copy = stream, copy

    def write(self, text: str) -> int:
        self._copy.write(text)
        return self._stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


@contextlib.contextmanager
def _captured_output():
    """Copy stdout and stderr into a buffer for the duration (the job's log)."""
    buffer = io.StringIO()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Tee(sys.stdout, buffer), _Tee(sys.stderr, buffer)
    try:
        yield buffer
    finally:
        sys.stdout, sys.stderr = saved


def run_seeds(cfg: TrainConfig, run_dir: Path, info: RunInfo) -> dict[str, Any]:
    """``cfg.seeds_per_job`` runs (seed, seed+1, ...): one run directory, or ``seed<N>/`` in it for each.

    Returns:
        The job's record: seeds, their final eval returns, run directories and the
        objective (the mean final eval return, what a sweeper maximizes).
    """
    seeds = [cfg.seed + k for k in range(cfg.seeds_per_job)]
    summaries = []
    for seed in seeds:
        if len(seeds) == 1:
            summaries.append(run(cfg, run_dir, info))
            continue
        one = dataclasses.replace(cfg, seed=seed, seeds_per_job=1)
        extra = (f"seed={seed}", "seeds_per_job=1")
        kept = tuple(o for o in info.overrides if not o.startswith(("seed=", "seeds_per_job=")))
        seed_info = dataclasses.replace(info, overrides=kept + extra,
                                        command=shlex.join(["rlexp", "train", *kept, *extra]))
        summaries.append(run(one, run_dir / f"seed{seed}", seed_info))
    returns = [s["eval_return_mean"] for s in summaries]
    return {
        "status": "finished",
        "overrides": list(info.overrides),
        "seeds": seeds,
        "eval_returns": returns,
        "objective": float(np.mean(returns)),
        "run_dirs": [str(Path(s["run_dir"])) for s in summaries],
    }


@hydra.main(version_base="1.3", config_path="pkg://rlexp.conf", config_name="train")
def main(cfg: DictConfig) -> float:
    """Hydra task function: one training run (one job of a multirun)."""
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    overrides = tuple(hc.overrides.task)
    multirun = hc.mode == RunMode.MULTIRUN
    info = RunInfo(
        command=shlex.join(["rlexp", "train", *overrides]),
        overrides=overrides,
        wandb_group=f"multirun-{Path(hc.sweep.dir).name}" if multirun else None,
    )
    if not multirun:
        try:
            record = run_seeds(to_typed(cfg), run_dir, info)
        except ConfigError:
            _remove_if_empty(run_dir, Path.cwd())  # Hydra made it; bad input leaves nothing behind
            raise
        if len(record["seeds"]) > 1:
            write_job_summary(run_dir, record)
        return record["objective"]
    # a multirun job: its console output goes to job.log too; a crash fails this job only
    # (the sweep goes on, and its report names the job), while bad input stops the sweep
    with _captured_output() as log:
        try:
            record = run_seeds(to_typed(cfg), run_dir, info)
        except ConfigError:
            _remove_if_empty(run_dir, Path.cwd())
            raise
        except Exception as err:  # noqa: BLE001 - recorded with its traceback, reported at the sweep's end
            traceback.print_exc()
            first = (str(err).strip().splitlines() or [""])[0]
            record = {"status": "failed", "overrides": list(overrides), "error": f"{type(err).__name__}: {first}",
                      "objective": float("nan")}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / JOB_LOG).write_text(log.getvalue())
    write_job_summary(run_dir, record)
    return record["objective"]

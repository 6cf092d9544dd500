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
import math
import random
import shlex
import signal
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
from rlexp.checkpoint import CheckpointError, CheckpointStore, step_name
from rlexp.config import ConfigError, DeviceConfig, TrainConfig, flatten, to_typed
from rlexp.envs import failing_env_index, make_env, make_vector_env, transition_model
from rlexp import faults
from rlexp.evaluation import evaluate
from rlexp.loggers import ConsoleLogger, JsonlLogger, WandbLogger
from rlexp.state import ActionLog, GracefulStop, LoopState, obs_digest, rng_state, set_rng_state, truncate_metrics
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
    # only when it changes (it is off by default): the first call costs ~1.4 s (torch imports
    # its compiler stack), paid by every `rlexp train` before
    if torch.are_deterministic_algorithms_enabled() != deterministic:
        torch.use_deterministic_algorithms(deterministic, warn_only=True)


@dataclass
class RunInfo:
    """What the caller knows about the run that the config does not."""

    command: str = "rlexp train"  # the command that reproduces this run
    overrides: tuple[str, ...] = ()  # the Hydra overrides of this run
    wandb_group: str | None = None  # default W&B group (a multirun's sweep name)


class TrainingError(Exception):
    """The run stopped on a fault it cannot continue past (a NaN loss, an env that raised):
    one line naming the step, and where the last good checkpoint is."""


class RunStopped(BaseException):
    """SIGINT or SIGTERM stopped the run after a checkpoint; ``exit_code`` is 128 + the signal.

    A BaseException: a sweep must stop with it, not record it as one failed job.
    """

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def run(cfg: TrainConfig, run_dir: Path, info: RunInfo | None = None) -> dict[str, Any]:
    """Train ``cfg.algo`` on ``cfg.env``, writing everything into ``run_dir``.

    Returns:
        A summary: final eval return mean/std, agent steps, wall time, run directory.

    Raises:
        ConfigError: the config cannot run here; nothing has been written to ``run_dir``.
        TrainingError: a NaN loss or a failing env stopped the run (the last good checkpoint stays).
        RunStopped: SIGINT/SIGTERM stopped the run after a checkpoint.
    """
    info = info or RunInfo()
    run_dir = Path(run_dir)
    if (run_dir / "metrics.jsonl").exists():
        raise ConfigError(f"run directory {run_dir} already holds a run; choose another hydra.run.dir "
                          f"(or continue it: rlexp resume {run_dir})")
    return _build_and_loop(cfg, run_dir, info, resume=False)


def resume(run_dir: Path | str, total_steps: int | None = None, trust: bool = False) -> dict[str, Any]:
    """Continue the run in ``run_dir`` from its newest good checkpoint, in place.

    ``total_steps`` extends (or sets) the budget; the run's own config.yaml is used otherwise.

    Raises:
        ConfigError: not a run directory, a config or checkpoint that does not fit, a run that
            already reached its budget; the run directory is left as it was.
    """
    from rlexp.runs import check_run_dir, load_run_config

    run_dir = check_run_dir(run_dir)
    cfg = load_run_config(run_dir, trust=trust)
    if total_steps is not None:
        cfg = dataclasses.replace(cfg, total_steps=total_steps)
    summary_file = run_dir / "summary.json"
    if summary_file.is_file():
        done = json.loads(summary_file.read_text()).get("steps", 0)
        if cfg.total_steps <= done:
            raise ConfigError(f"{run_dir} already finished its {done} agent steps; to train it longer: "
                              f"rlexp resume {run_dir} --total-steps N (N > {done})")
    command = (run_dir / "command.txt").read_text().strip() if (run_dir / "command.txt").is_file() else "rlexp train"
    return _build_and_loop(cfg, run_dir, RunInfo(command=command), resume=True)


def _build_and_loop(cfg: TrainConfig, run_dir: Path, info: RunInfo, resume: bool) -> dict[str, Any]:
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
        store = CheckpointStore(run_dir / "checkpoints", cfg.checkpoint_keep_last)
        restored = _restore(cfg, run_dir, store, algo, device) if resume else None
        return _loop(cfg, run_dir, info, envs, eval_envs, algo, store, resume, restored)
    finally:
        envs.close()
        if eval_envs is not None:
            eval_envs.close()


# config keys a resume may change: they do not alter what is learned up to the checkpoint
RESUMABLE_CHANGES = ("total_steps", "resume", "logger", "launcher")


def _restore(cfg: TrainConfig, run_dir: Path, store: CheckpointStore, algo, device) -> dict[str, Any] | None:
    """The newest good checkpoint of ``run_dir``, checked against the run's config and loaded
    into ``algo``; None when the run has none yet (it starts over, which is exact too)."""
    found = store.latest(need_buffers=True)
    store.remove_strays()
    if found is None:
        return None
    entry, state, buffers = found
    path = store.dir / entry.main
    if not isinstance(state, dict) or "loop" not in state or "algo" not in state:
        raise ConfigError(f"{path} is not a resumable rlexp checkpoint (it has no loop state); "
                          "it may come from an older rlexp: start a new run")
    ours = flatten(OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True))
    theirs = flatten(state.get("config") or {})
    differs = sorted(k for k in set(ours) | set(theirs)
                     if ours.get(k) != theirs.get(k) and not k.startswith(RESUMABLE_CHANGES))
    if differs:
        shown = ", ".join(differs[:5]) + (", ..." if len(differs) > 5 else "")
        raise ConfigError(f"checkpoint {path} was written by a different config than {run_dir / 'config.yaml'} "
                          f"(differs in: {shown}); it cannot resume this run")
    try:
        algo.load_state_dict(state["algo"])
        if buffers is not None:
            algo.load_buffer_state(buffers)
    except (RuntimeError, KeyError, ValueError, TypeError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ConfigError(f"checkpoint {path} does not fit this run's config: {first}") from None
    state["buffers_restored"] = buffers is not None or algo.buffer_state() is None
    return state


def _write_run_files(cfg: TrainConfig, run_dir: Path, info: RunInfo) -> dict[str, Any]:
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(resolved))
    (run_dir / "overrides.yaml").write_text(OmegaConf.to_yaml(list(info.overrides)))
    (run_dir / "command.txt").write_text(info.command + "\n")
    return resolved


def _loop(cfg: TrainConfig, run_dir: Path, info: RunInfo, envs, eval_envs, algo, store: CheckpointStore,
          resuming: bool, restored: dict[str, Any] | None) -> dict[str, Any]:
    """The training loop; ``resuming``: continue ``run_dir`` in place (from ``restored``, the
    newest good checkpoint, or from the start when it has none)."""
    if resuming:
        resolved = OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)
        if cfg.total_steps != OmegaConf.load(run_dir / "config.yaml").get("total_steps"):
            (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(resolved))  # an extended budget
        (run_dir / "summary.json").unlink(missing_ok=True)
    else:
        resolved = _write_run_files(cfg, run_dir, info)
    s = LoopState(**{k: v for k, v in restored["loop"].items()}) if restored else LoopState()
    truncate_metrics(run_dir / "metrics.jsonl", s.step)
    num_envs = cfg.env.num_envs
    console = ConsoleLogger(cfg.logger.progress, cfg.total_steps, f"{cfg.algo.name} {cfg.env.id} seed={cfg.seed}")
    sinks: list[Any] = [JsonlLogger(run_dir / "metrics.jsonl"), console]
    figure_env = None  # a single env for the tabular pictures, built on first use
    actions_log = ActionLog(envs.single_action_space)
    try:
        wandb_on = cfg.logger.wandb.mode != "disabled"
        wandb_sink = WandbLogger(cfg.logger.wandb, run_dir, resolved, info.wandb_group, run_id=s.wandb_id) \
            if wandb_on else None
        if wandb_sink is not None:
            sinks.append(wandb_sink)
            s.wandb_id = wandb_sink.run_id

        def log(step: int, metrics: dict[str, float]) -> None:
            for sink in sinks:
                sink.log(step, metrics)

        def checkpoint_state(step: int) -> dict[str, Any]:
            return {"algo": algo.state_dict(), "step": step, "config": resolved}

        def run_eval(step: int) -> None:
            started = time.perf_counter()
            seed = cfg.seed + EVAL_SEED_OFFSET + s.eval_index * cfg.eval_episodes
            returns, lengths = evaluate(algo.predict, eval_envs, cfg.eval_episodes, seed)
            s.eval_index += 1
            s.eval_mean, s.eval_std = float(returns.mean()), float(returns.std())
            s.curve_eval.append([step, s.eval_mean, s.eval_std])
            log(step, {"eval/episode_return": s.eval_mean, "eval/episode_return_std": s.eval_std,
                       "eval/episode_length": float(lengths.mean()), "eval/episodes": float(len(returns))})
            if cfg.logger.video_interval_evals and (s.eval_index - 1) % cfg.logger.video_interval_evals == 0:
                record_video(step, seed)
            if s.eval_mean > s.best_eval_return:  # DQN's returns oscillate: keep the best policy too
                s.best_eval_return, s.best_eval_step = s.eval_mean, step
                try:
                    store.save_best(step, checkpoint_state(step))
                except CheckpointError as err:
                    console.message(f"warning: {err}")
            s.side_s += time.perf_counter() - started

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

        def draw_figures(step: int, suffix: str = "", curve: bool = False) -> list[str]:
            """The run's pictures (algorithm tables, learning curve) -> figures/*.png and W&B."""
            nonlocal figure_env
            from rlexp import plots  # matplotlib: imported only when drawing

            started = time.perf_counter()
            tables = algo.tables()
            if tables and figure_env is None:
                figure_env = make_env(cfg.env)
            figures = plots.run_figures(tables, figure_env)
            if curve:
                title = f"{cfg.algo.name} on {cfg.env.id}, seed {cfg.seed}"
                figures["learning_curve"] = plots.draw_learning_curve(
                    [tuple(x) for x in s.curve_train], [tuple(x) for x in s.curve_eval], title)
            for name, figure in figures.items():
                path = plots.save_figure(figure, run_dir / "figures" / f"{name}{suffix}.png")
                if wandb_sink is not None:
                    wandb_sink.log_image(step, f"figures/{name}", path)
            s.side_s += time.perf_counter() - started
            return list(figures)

        session_start = time.perf_counter()
        last_saved = {"step": restored["step"] if restored else None}

        def checkpoint(obs: np.ndarray, final: bool = False) -> Path | None:
            """Save the full training state at ``s.step``; a failed periodic one is a warning."""
            if last_saved["step"] == s.step:
                return store.dir / step_name(s.step)
            started = time.perf_counter()
            bad = algo.non_finite()
            if bad:  # never replace a good checkpoint with a diverged one
                raise TrainingError(f"non-finite values in {bad} at step {s.step}; {_last_good(store, run_dir)}")
            s.obs_digest = obs_digest(obs)
            s.wall_s = wall_before + time.perf_counter() - session_start
            state = {**checkpoint_state(s.step), "loop": dataclasses.asdict(s), "rng": rng_state(),
                     "env_actions": actions_log.tensor(), "format": 1}
            buffers = algo.buffer_state() if cfg.checkpoint_replay else None
            try:
                path = store.save(s.step, state, buffers)
            except CheckpointError as err:
                if final:
                    raise TrainingError(str(err)) from None
                console.message(f"warning: {err}")
                return None
            last_saved["step"] = s.step
            s.side_s += time.perf_counter() - started
            return path

        wall_before = s.wall_s
        obs, _ = envs.reset(seed=cfg.seed)
        if restored is None:
            s.ep_return, s.ep_length = [0.0] * num_envs, [0] * num_envs
            if resuming:  # killed before its first checkpoint: starting over is exact too
                console.message(f"{run_dir} has no checkpoint yet: starting the run over in place")
        else:
            obs = _replay_envs(envs, obs, restored, actions_log, s, console, cfg)
            set_rng_state(restored["rng"])
            if not restored["buffers_restored"]:
                console.message("note: no replay buffer or rollout was saved with this checkpoint (checkpoint_replay="
                                "false, or an older checkpoint used as a fallback): learning continues from an empty "
                                "one, so the run is not identical to an uninterrupted one")
            if algo.device.type != "cpu":
                console.message(f"note: resumed on {algo.device}: GPU kernels are not deterministic, so the continued "
                                "run is correct but not bit-identical to an uninterrupted one (docs/resume.md)")
            console.message(f"resumed {run_dir} at step {s.step} of {cfg.total_steps}")
        ep_return = np.asarray(s.ep_return, dtype=np.float64)
        ep_length = np.asarray(s.ep_length, dtype=np.int64)
        start = last_time = time.perf_counter()
        last_step = s.step
        kill_at = faults.kill_step()  # tests: a SIGKILL at this step (RLEXP_FAULT=step:N)
        intervals = cfg.logger.log_interval_steps, cfg.eval_interval_steps, cfg.checkpoint_interval_steps

        with GracefulStop() as stop:
            while s.step < cfg.total_steps:
                step = s.step
                if kill_at is not None and step >= kill_at:
                    faults.kill()
                actions = algo.act(obs, step)
                try:
                    next_obs, rewards, terminated, truncated, infos = envs.step(actions)
                except Exception as err:  # noqa: BLE001 - any env failure: named, checkpointed, stopped
                    s.ep_return, s.ep_length = ep_return.tolist(), ep_length.tolist()
                    saved = checkpoint(obs)
                    index = failing_env_index(err)
                    where = f"env {index}" if index is not None else "an env"
                    first = (str(err).strip().splitlines() or [""])[0]
                    kept = f"checkpoint saved at step {step} ({saved})" if saved else _last_good(store, run_dir)
                    raise TrainingError(f"{where} raised {type(err).__name__} at step {step}: {first}; {kept}; "
                                        f"resume with: rlexp resume {run_dir}") from err
                actions_log.append(actions)
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
                        s.window_returns.append(float(ep_return[i]))
                        s.window_lengths.append(int(ep_length[i]))
                        ep_return[i] = 0.0
                        ep_length[i] = 0
                        s.episodes += 1
                # learning signals: clipped rewards, a lost life as terminal (Atari); logged
                # returns above stay the real score
                learn_rewards = np.clip(rewards, -1.0, 1.0) if cfg.env.clip_rewards else rewards
                life_loss = infos.get("life_loss")
                learn_terminated = terminated | life_loss if life_loss is not None else terminated
                update = algo.observe(obs, actions, learn_rewards, real_next, learn_terminated, truncated, step, done)
                if update:
                    bad = [k for k, v in update.items() if k.startswith("loss/") and not math.isfinite(v)]
                    if bad:
                        raise TrainingError(f"{bad[0]} is {update[bad[0]]} at step {step + num_envs}; the run "
                                            f"stopped: {_last_good(store, run_dir)} (lower algo.lr or set "
                                            "algo.max_grad_norm, then start a new run or resume from it)")
                    s.last_update = update
                every = cfg.logger.figure_interval_episodes
                if every and cfg.logger.figures and done.any() and s.episodes // every > (s.episodes - done.sum()) // every:
                    draw_figures(step + num_envs, suffix=f"_episode{s.episodes // every * every}")
                prev, s.step, obs = step, step + num_envs, next_obs
                step = s.step

                log_due, eval_due, ckpt_due = (k > 0 and step // k > prev // k for k in intervals)
                if log_due:
                    now = time.perf_counter()
                    metrics = {"perf/sps": (step - last_step) / (now - last_time), "train/episodes": float(s.episodes)}
                    if s.window_returns:
                        metrics["train/episode_return"] = float(np.mean(s.window_returns))
                        s.curve_train.append([step, metrics["train/episode_return"]])
                        metrics["train/episode_length"] = float(np.mean(s.window_lengths))
                        s.window_returns.clear()
                        s.window_lengths.clear()
                    metrics.update(algo.schedules(step))
                    metrics.update(s.last_update)
                    log(step, metrics)
                    last_time, last_step = time.perf_counter(), step
                if eval_due and step < cfg.total_steps:
                    run_eval(step)
                if (ckpt_due and step < cfg.total_steps) or stop.signum is not None:
                    s.ep_return, s.ep_length = ep_return.tolist(), ep_length.tolist()
                    saved = checkpoint(obs)
                    if stop.signum is not None:
                        name = signal.Signals(stop.signum).name
                        where = f"checkpoint saved ({saved})" if saved else _last_good(store, run_dir)
                        console.close()
                        console.message(f"stopped by {name} at step {step} of {cfg.total_steps}: {where}.\n"
                                        f"resume with: rlexp resume {run_dir}")
                        raise RunStopped(f"stopped by {name}", 128 + stop.signum)

            run_eval(s.step)
            s.ep_return, s.ep_length = ep_return.tolist(), ep_length.tolist()
            checkpoint(obs, final=True)
        drawn = draw_figures(s.step, curve=True) if cfg.logger.figures else []
        wall_s = wall_before + time.perf_counter() - session_start
        summary = {
            "run_dir": str(run_dir),
            "steps": s.step,
            "episodes": s.episodes,
            "wall_s": wall_s,
            "train_wall_s": wall_s - s.side_s,  # without evaluations and checkpoints
            "eval_return_mean": s.eval_mean,
            "eval_return_std": s.eval_std,
            "best_eval_return": s.best_eval_return,
            "best_eval_step": s.best_eval_step,
        }
        protocol = getattr(cfg.env, "protocol", None)
        if protocol is not None:  # every Atari score carries its evaluation protocol
            summary["protocol"] = protocol
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        console.close()
        console.message(
            f"done: {s.step} agent steps in {wall_s:.1f}s; final eval return {s.eval_mean:.1f} +/- {s.eval_std:.1f} "
            f"over {cfg.eval_episodes} episodes (best {s.best_eval_return:.1f} at step {s.best_eval_step})"
            + (f", protocol {protocol}" if protocol else "") + "\n"
            f"run directory: {run_dir}\n"
            "  config.yaml, command.txt  what ran, and how to run it again\n"
            "  metrics.jsonl             one JSON object per log event (train/, eval/, loss/, perf/)\n"
            "  checkpoints/              step_<N>.pt (the last "
            + (f"{cfg.checkpoint_keep_last}" if cfg.checkpoint_keep_last else "all")
            + "), best.pt (best eval), latest.pt, manifest.json\n"
            + (f"  figures/                  {', '.join(f'{n}.png' for n in drawn)}\n" if drawn else "")
            + ("  wandb/                    the W&B run (`wandb sync` uploads an offline run)" if wandb_on else "")
        )
        return summary
    finally:
        if figure_env is not None:
            figure_env.close()
        for sink in sinks:
            sink.close()


def _last_good(store: CheckpointStore, run_dir: Path) -> str:
    path = store.latest_path()
    return f"the last good checkpoint is {path}" if path else "no checkpoint was written yet"


def _replay_envs(envs, obs: np.ndarray, restored: dict[str, Any], actions_log: ActionLog, s: LoopState,
                 console, cfg: TrainConfig) -> np.ndarray:
    """Step freshly reset training envs through the logged actions, back to the checkpoint's
    state; warn (in the console and the run's log) when the result differs from what was saved."""
    saved = restored.get("env_actions")
    if saved is not None and len(saved):
        actions_log.load(saved)
        started = time.perf_counter()
        for actions in saved.numpy().astype(actions_log.env_dtype):
            obs, *_ = envs.step(actions)
        console.message(f"restored the envs by replaying {len(saved) * cfg.env.num_envs:,} agent steps of actions "
                        f"in {time.perf_counter() - started:.1f}s")
    if obs_digest(obs) != s.obs_digest:
        console.message("warning: replaying the logged actions did not reproduce the envs' saved state (the env is "
                        "not deterministic given its seed and actions); training continues from the replayed state, "
                        "so this run is no longer identical to an uninterrupted one")
    return obs


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
    if cfg.get("resume"):
        return _resume_from_hydra(cfg, run_dir, overrides, multirun)
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
            error = first if isinstance(err, TrainingError) else f"{type(err).__name__}: {first}"
            record = {"status": "failed", "overrides": list(overrides), "error": error,
                      "objective": float("nan")}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / JOB_LOG).write_text(log.getvalue())
    write_job_summary(run_dir, record)
    return record["objective"]


def _resume_from_hydra(cfg: DictConfig, hydra_dir: Path, overrides: tuple[str, ...], multirun: bool) -> float:
    """``rlexp train resume=RUN_DIR [total_steps=N]``: the run continues with its own config.yaml."""
    from rlexp.runs import check_run_dir

    _remove_if_empty(hydra_dir, Path.cwd())  # Hydra made an output dir; the run writes into RUN_DIR
    check_run_dir(cfg.resume)
    if multirun:
        raise ConfigError("resume= continues one run: drop -m (resume a sweep's jobs one by one: rlexp resume JOB_DIR)")
    allowed = ("resume=", "total_steps=")
    extra = [o for o in overrides if not o.startswith(allowed)]
    if extra:
        raise ConfigError(f"resume={cfg.resume} continues the run with its own config.yaml; only total_steps=N may "
                          f"change, drop: {' '.join(extra)}")
    total = next((int(o.partition("=")[2]) for o in overrides if o.startswith("total_steps=")), None)
    return resume(cfg.resume, total_steps=total)["eval_return_mean"]

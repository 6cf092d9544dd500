"""Finished (or running) runs: load a run directory's config and checkpoints, evaluate them.

A run directory is what ``rlexp train`` writes: ``config.yaml`` (the resolved config),
``checkpoints/{latest,best,step_<N>}.pt``. Loading never executes code from those files:
the config is plain YAML read by OmegaConf and typed against ``rlexp.config``'s schemas,
and checkpoints go through :func:`rlexp.checkpoint.load_checkpoint` (``weights_only=True``).

Every problem a user can cause (a wrong path, a missing or corrupt checkpoint, a config
this rlexp cannot read) is a :class:`~rlexp.config.ConfigError` with one line naming the
problem and the valid choices, raised before anything is written.
"""

from __future__ import annotations

import difflib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlexp.config import (
    ALGOS,
    GROUP_SCHEMAS,
    DeviceConfig,
    LauncherConfig,
    LoggerConfig,
    NetworkConfig,
    TrainConfig,
    to_typed,
)
from rlexp.errors import ConfigError, first_line, omegaconf_error_line

RUN_CONFIG = "config.yaml"
CHECKPOINT_DIR = "checkpoints"
EVALS_FILE = "evals.jsonl"
VIDEO_DIR = "videos"
# --checkpoint shorthands: latest (the newest good checkpoint in checkpoints/manifest.json) and
# rlexp.checkpoint's BEST (not imported here: importing torch takes seconds, and bad input
# should get its answer at once)
CHECKPOINT_NAMES = {"latest": "latest.pt", "best": "best.pt"}


# --------------------------------------------------------------------------- the run directory


def check_run_dir(run_dir: Path | str) -> Path:
    """``run_dir`` as a Path if it holds a run (a ``config.yaml``).

    Raises:
        ConfigError: it does not exist, is not a directory, or has no ``config.yaml``.
    """
    run_dir = Path(run_dir)
    if not run_dir.exists():
        hint = ""
        parent = run_dir.parent
        if parent.is_dir():
            close = difflib.get_close_matches(run_dir.name, [p.name for p in parent.iterdir() if p.is_dir()], n=3)
            if close:
                hint = f"; did you mean {', '.join(str(parent / name) for name in close)}?"
        raise ConfigError(f"run directory {run_dir} does not exist{hint}")
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is not a directory; pass a run directory (the one with config.yaml and checkpoints/)")
    if not (run_dir / RUN_CONFIG).is_file():
        jobs = sorted(p.name for p in run_dir.iterdir() if (p / RUN_CONFIG).is_file())
        if jobs:
            raise ConfigError(f"{run_dir} is a sweep directory, not a run; pass one of its runs: {', '.join(jobs)}")
        raise ConfigError(
            f"{run_dir} is not a run directory (no {RUN_CONFIG}); pass the directory `rlexp train` printed, "
            "e.g. runs/dqn/CartPole-v1/<date>_<time>_seed1"
        )
    return run_dir


# What a run directory's config may make rlexp import or instantiate: a config from someone
# else's run must not run their code (``env.id: evil:Env`` would import module ``evil``).
TRUSTED_MODULES = ("rlexp", "torch.nn", "torch.optim", "gymnasium", "ale_py")


def _trusted(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in TRUSTED_MODULES)


def check_code_references(data: Any, path: Path) -> None:
    """Refuse a run config that names code outside :data:`TRUSTED_MODULES`: a ``_target_``
    anywhere, or an ``env.id`` of the form ``module:Id`` (gymnasium imports the module).

    Raises:
        ConfigError: one line naming the key, the module and how to allow it.
    """
    from omegaconf import DictConfig, OmegaConf

    allowed = ", ".join(TRUSTED_MODULES)
    hint = "if you trust this run directory: rlexp eval --trust or rlexp resume --trust"

    def walk(node: Any, prefix: str) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            full = f"{prefix}.{key}" if prefix else str(key)
            if key == "_target_" and isinstance(value, str) and not _trusted(value.rpartition(".")[0]):
                raise ConfigError(f"{path}: {full}={value!r} is not allowed (a run directory may only name "
                                  f"targets in {allowed}); {hint}")
            walk(value, full)

    plain = OmegaConf.to_container(data, resolve=False) if isinstance(data, DictConfig) else {}
    walk(plain, "")
    env = plain.get("env")
    env_id = env.get("id") if isinstance(env, dict) else None
    if isinstance(env_id, str) and ":" in env_id:
        module = env_id.partition(":")[0]
        if not _trusted(module):
            raise ConfigError(f"{path}: env.id={env_id!r} would import module {module!r}, which is not in {allowed}; "
                              f"{hint}")


def load_run_config(run_dir: Path | str, trust: bool = False) -> TrainConfig:
    """The typed :class:`~rlexp.config.TrainConfig` a run was trained with (its ``config.yaml``).

    The algorithm schema comes from the registry (``ALGOS[algo.name]``), the env schema from
    ``GROUP_SCHEMAS["env"][env.type]``; every ``__post_init__`` range check runs.

    Unless ``trust``, a config naming code outside :data:`TRUSTED_MODULES` is refused
    (:func:`check_code_references`).

    Raises:
        ConfigError: not a run directory, unreadable YAML, an unknown algorithm or env type,
            untrusted code references, or values this rlexp's schemas reject (one line,
            naming the file).
    """
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    path = check_run_dir(run_dir) / RUN_CONFIG
    try:
        data = OmegaConf.load(path)  # plain YAML (a safe loader): no code runs
    except Exception as err:  # noqa: BLE001 - yaml.YAMLError, UnicodeDecodeError, ...
        raise ConfigError(f"{path} is not valid YAML: {first_line(err)}") from None
    if not isinstance(data, DictConfig):
        raise ConfigError(f"{path} is not a run config (expected a mapping with algo, env, network, ...)")
    if not trust:
        check_code_references(data, path)

    def section(name: str) -> Any:
        node = data.get(name)
        if not isinstance(node, DictConfig):
            raise ConfigError(f"{path} has no {name} section; it is not a config written by `rlexp train`")
        return node

    algo_name = section("algo").get("name")
    if algo_name not in ALGOS:
        raise ConfigError(f"{path}: algo.name={algo_name!r} is not a known algorithm; valid choices: {', '.join(ALGOS)}")
    env_schemas = GROUP_SCHEMAS["env"]
    env_type = section("env").get("type", "gym")
    if env_type not in env_schemas:
        raise ConfigError(f"{path}: env.type={env_type!r} is not a known env type; valid choices: {', '.join(env_schemas)}")

    try:
        base = OmegaConf.structured(TrainConfig)
        base.algo = OmegaConf.structured(ALGOS[algo_name].schema)
        base.env = OmegaConf.structured(env_schemas[env_type])
        base.network = OmegaConf.structured(NetworkConfig)
        base.device = OmegaConf.structured(DeviceConfig)
        base.logger = OmegaConf.structured(LoggerConfig)
        base.launcher = OmegaConf.structured(LauncherConfig)
        merged = OmegaConf.merge(base, data)
        return to_typed(merged)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    except OmegaConfBaseException as err:
        why = omegaconf_error_line(err) or first_line(err) or type(err).__name__
        raise ConfigError(f"{path} does not fit this rlexp's config schema: {why}") from None


# --------------------------------------------------------------------------- checkpoints


def available_checkpoints(run_dir: Path | str) -> list[str]:
    """The checkpoint choices that exist: ``latest``, ``best``, then ``step_<N>.pt`` file names."""
    ckpt_dir = Path(run_dir) / CHECKPOINT_DIR
    names = [name for name, file in CHECKPOINT_NAMES.items() if (ckpt_dir / file).is_file()]
    if ckpt_dir.is_dir():
        names += sorted(p.name for p in ckpt_dir.glob("*.pt") if p.name not in CHECKPOINT_NAMES.values())
    return names


def resolve_checkpoint(run_dir: Path | str, which: str = "latest") -> Path:
    """The checkpoint file ``which`` names.

    ``which`` is ``latest`` (``checkpoints/latest.pt``), ``best`` (``checkpoints/best.pt``),
    a file name in ``checkpoints/`` (``step_0000025000.pt``, the ``.pt`` optional), or a
    path (absolute, relative to the working directory, or relative to the run directory).

    Raises:
        ConfigError: no such checkpoint; the message lists the ones that exist.
    """
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / CHECKPOINT_DIR
    if which in CHECKPOINT_NAMES:
        candidates = [ckpt_dir / CHECKPOINT_NAMES[which]]
    else:
        given = Path(which).expanduser()
        candidates = [given]
        if not given.is_absolute():
            candidates += [run_dir / given, ckpt_dir / given]
            if given.suffix != ".pt":
                candidates.append(ckpt_dir / f"{which}.pt")
    for path in candidates:
        if path.is_file():
            return path
    if which == "latest" and (ckpt_dir / "manifest.json").is_file():  # no latest.pt symlink (e.g. no symlinks here)
        try:
            entries = json.loads((ckpt_dir / "manifest.json").read_text())["checkpoints"]
        except (ValueError, KeyError, TypeError):
            entries = []
        for entry in reversed(entries):
            path = ckpt_dir / f"step_{int(entry['step']):010d}.pt"
            if path.is_file():
                return path
    available = available_checkpoints(run_dir)
    choices = f"available: {', '.join(available)}" if available else f"{ckpt_dir} holds no checkpoints"
    raise ConfigError(f"checkpoint {which!r} not found in {run_dir}; {choices} (or pass a path to a .pt file)")


def latest_good_checkpoint(run_dir: Path, which: str) -> Path:
    """:func:`resolve_checkpoint`, where ``latest`` is the newest checkpoint whose checksums
    hold (a damaged one is named in a warning, then skipped)."""
    path = resolve_checkpoint(run_dir, which)
    if which == "latest":
        from rlexp.checkpoint import CheckpointStore

        found = CheckpointStore(Path(run_dir) / CHECKPOINT_DIR).latest()
        if found is not None:
            path = Path(run_dir) / CHECKPOINT_DIR / found[0].main
    return path


def load_run_checkpoint(path: Path | str, map_location: Any = "cpu") -> dict[str, Any]:
    """A checkpoint's contents (``weights_only=True``: no code runs).

    Raises:
        ConfigError: the file is corrupt, truncated or not an rlexp checkpoint.
    """
    from rlexp.checkpoint import load_checkpoint

    path = Path(path)
    try:
        ckpt = load_checkpoint(path, map_location=map_location)
    except Exception as err:  # noqa: BLE001 - zip, pickle, EOF and weights-only errors alike
        why = first_line(err) or type(err).__name__
        raise ConfigError(f"checkpoint {path} cannot be loaded (corrupt or truncated?): {why}") from None
    if isinstance(ckpt, dict) and "trainer" not in ckpt and isinstance(ckpt.get("algo"), dict):
        ckpt = {**ckpt, "trainer": {"algo": ckpt["algo"]}}  # format 1 (before the trainer split): still evaluable
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("trainer"), dict):
        raise ConfigError(f"{path} is not an rlexp checkpoint (no trainer state in it)")
    return ckpt


@dataclass
class LoadedRun:
    """A run's config and an algorithm restored from one of its checkpoints."""

    run_dir: Path
    cfg: TrainConfig
    checkpoint: Path
    step: int | None  # agent steps at the checkpoint (None if it does not say)
    algo: Any  # rlexp.algos.Algorithm
    device: Any  # torch.device


def load_run(run_dir: Path | str, checkpoint: str = "latest", device: str = "auto", envs: Any = None,
             trust: bool = False) -> LoadedRun:
    """Load ``run_dir``'s config, rebuild its algorithm with the training builders and restore
    ``checkpoint`` into it.

    ``device`` is a ``DeviceConfig.type`` (``auto``, ``cpu``, ``cuda``, ...); a run trained on
    a GPU evaluates on a CPU machine and back. ``envs``: a vector env of the run's env to take
    the spaces from (default: one copy is built and closed).

    Raises:
        ConfigError: any problem with the run directory, its config, the checkpoint or the device.
    """
    from rlexp.build import algorithm_class, build_algorithm, registered, resolve_device
    from rlexp.envs import make_vector_env

    run_dir = check_run_dir(run_dir)
    cfg = load_run_config(run_dir, trust=trust)
    registered(cfg.algo.name)
    path = latest_good_checkpoint(run_dir, checkpoint)
    torch_device = resolve_device(DeviceConfig(type=device))
    ckpt = load_run_checkpoint(path)
    algo_cfg = algorithm_class(cfg).evaluation_config(cfg.algo)
    own_envs = envs is None
    envs = make_vector_env(cfg.env, num_envs=1) if own_envs else envs  # the spaces of one copy, as in training
    try:
        algo = build_algorithm(cfg, envs, torch_device, algo_cfg)
    finally:
        if own_envs:
            envs.close()
    try:
        algo.load_state_dict(ckpt["trainer"]["algo"])
    except (RuntimeError, KeyError, ValueError, TypeError) as err:
        raise ConfigError(
            f"checkpoint {path} does not fit {run_dir / RUN_CONFIG} ({cfg.algo.name} on {cfg.env.id}): {first_line(err)}"
        ) from None
    step = ckpt.get("step")
    return LoadedRun(run_dir, cfg, path, int(step) if step is not None else None, algo, torch_device)


# --------------------------------------------------------------------------- evaluation


def protocol_of(env_cfg: Any) -> dict[str, Any] | None:
    """The evaluation protocol of an env config that has one (Atari), else None."""
    name = getattr(env_cfg, "protocol", None)
    if name is None:
        return None
    details = {"name": name}
    for key in ("repeat_action_probability", "noop_max", "max_episode_frames", "frame_skip", "full_action_space"):
        if hasattr(env_cfg, key):
            details[key] = getattr(env_cfg, key)
    return details


def run_relative(path: Path, run_dir: Path) -> str:
    """``path`` relative to ``run_dir`` when inside it (records survive moving the run), else absolute."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path(run_dir).resolve()))
    except ValueError:
        return str(path)


def video_path(run_dir: Path, checkpoint: Path, step: int | None, episode: int) -> Path:
    """``RUN_DIR/videos/eval_step<N>_ep<k>.mp4`` (for best.pt or another file: ``eval_<name>_step<N>_ep<k>.mp4``)."""
    step_text = f"step{step}" if step is not None else "stepNA"
    label = "" if checkpoint.stem.startswith("step_") else f"{checkpoint.stem}_"
    return Path(run_dir) / VIDEO_DIR / f"eval_{label}{step_text}_ep{episode}.mp4"


def evaluate_run(
    run_dir: Path | str,
    checkpoint: str = "latest",
    episodes: int | None = None,
    seed: int | None = None,
    video_episodes: int = 0,
    device: str = "auto",
    video_max_steps: int | None = None,
    trust: bool = False,
) -> dict[str, Any]:
    """Evaluate a run's checkpoint and append the result to ``RUN_DIR/evals.jsonl``.

    The protocol is training's: ``rlexp.evaluation.evaluate`` with the algorithm's
    ``predict`` (its ``epsilon_eval``) on ``min(episodes, 16)`` copies of the run's env (its
    no-op starts, sticky actions and episode cap). ``episodes`` defaults to the run's
    ``eval_episodes``, ``seed`` to the seed of its first in-training evaluation. With
    ``video_episodes`` > 0, that many episodes (seeds ``seed``, ``seed + 1``, ...: the first
    episodes of the vector env's copies) of one render env are written as mp4 files to
    ``RUN_DIR/videos/``, each at most ``video_max_steps`` agent steps.

    Returns:
        The record appended to ``evals.jsonl``; its paths are relative to the run directory
        (absolute for a checkpoint outside it).

    Raises:
        ConfigError: bad input (see :func:`load_run`), ``episodes`` < 1, or an env that
            cannot render when videos are asked for; nothing has been written.
    """
    if video_episodes < 0:
        raise ConfigError(f"--video-episodes must be >= 0, got {video_episodes}")
    if seed is not None and seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {seed}")
    # ---- everything that can refuse the input, before any file is written
    cfg = load_run_config(run_dir, trust=trust)
    episodes = cfg.eval_episodes if episodes is None else episodes
    if episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {episodes}")
    checkpoint_path = resolve_checkpoint(run_dir, checkpoint)
    evals_file = Path(run_dir) / EVALS_FILE
    if not os.access(run_dir, os.W_OK) or (evals_file.exists() and not os.access(evals_file, os.W_OK)):
        raise ConfigError(f"cannot write {evals_file} (permission denied); copy the run directory somewhere writable")

    from rlexp.build import eval_seed, process_settings  # torch, gymnasium: after the quick checks

    seed = eval_seed(cfg.seed, 0, episodes) if seed is None else seed
    with process_settings(cfg.device):  # the run's CPU settings, as in training; put back afterwards
        run, returns, lengths, eval_s, videos = _evaluate_checkpoint(
            cfg, run_dir, "latest" if checkpoint == "latest" else str(checkpoint_path), episodes, seed,
            video_episodes, device, video_max_steps, trust)
    record = _eval_record(run, returns, lengths, seed, eval_s, videos)
    with open(evals_file, "a") as f:
        f.write(json.dumps(record) + "\n")
    return record


def _evaluate_checkpoint(cfg: TrainConfig, run_dir: Path | str, checkpoint: str, episodes: int, seed: int,
                         video_episodes: int, device: str, video_max_steps: int | None, trust: bool):
    """The episodes (and videos) of :func:`evaluate_run`: (run, returns, lengths, seconds, videos)."""
    from rlexp.build import MAX_EVAL_ENVS
    from rlexp.envs import make_vector_env
    from rlexp.evaluation import evaluate
    from rlexp.video import record_episode, render_env_for_video

    eval_envs = make_vector_env(cfg.env, num_envs=min(episodes, MAX_EVAL_ENVS))
    render_env = None
    try:
        run = load_run(run_dir, checkpoint, device, envs=eval_envs, trust=trust)
        if video_episodes > 0:
            render_env = render_env_for_video(cfg.env, seed)
        start = time.perf_counter()
        returns, lengths = evaluate(run.algo.predict, eval_envs, episodes, seed)
        eval_s = time.perf_counter() - start
        videos = []
        for k in range(video_episodes):
            path = video_path(run.run_dir, run.checkpoint, run.step, k)
            episode_return, frames = record_episode(run.algo.predict, render_env, path, seed + k, video_max_steps)
            videos.append({"path": run_relative(path, run.run_dir), "seed": seed + k,
                           "return": episode_return, "frames": frames})
    finally:
        eval_envs.close()
        if render_env is not None:
            render_env.close()
    return run, returns, lengths, eval_s, videos


def _eval_record(run: LoadedRun, returns: np.ndarray, lengths: np.ndarray, seed: int, eval_s: float,
                 videos: list[dict[str, Any]]) -> dict[str, Any]:
    """The line :func:`evaluate_run` appends to ``evals.jsonl``."""
    cfg = run.cfg
    record: dict[str, Any] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "checkpoint": run_relative(run.checkpoint, run.run_dir),
        "step": run.step,
        "env": cfg.env.id,
        "episodes": int(len(returns)),
        "seed": seed,
        "mean": float(np.mean(returns)),
        "std": float(np.std(returns)),
        "returns": [float(r) for r in returns],
        "lengths": [int(n) for n in lengths],
        "epsilon_eval": getattr(cfg.algo, "epsilon_eval", None),
        "device": str(run.device),
        "eval_s": eval_s,
    }
    protocol = protocol_of(cfg.env)
    if protocol is not None:
        record["protocol"] = protocol
    if videos:
        record["videos"] = videos
    return record

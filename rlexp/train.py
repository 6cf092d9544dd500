"""``rlexp train``: ``run(cfg, run_dir)`` and ``resume(run_dir)`` are plain functions; ``main``
is the ``@hydra.main`` entry (one run, or one job of a multirun).

Data flows one way: config -> build (``rlexp.build``: process settings, seeds, the trainer)
-> lifecycle (``rlexp.lifecycle``) -> sinks and checkpoints. Everything that can refuse the
config is built before the run directory gets its first file, so bad input leaves nothing
behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import shlex
import sys
import traceback
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from rlexp.budget import given_keys, read
from rlexp.build import build_trainer, process_settings, seed_everything, trainer_class
from rlexp.checkpoint import write_json_atomic
from rlexp.config import ALGOS, TrainConfig, register_configs, to_typed
from rlexp.errors import ConfigError, TrainingError, check_writable_dir, first_line
from rlexp.lifecycle import Lifecycle, RunInfo
from rlexp.sweeps import JOB_LOG, write_job_summary

register_configs()  # the schemas and resolvers @hydra.main's compose reads (conf/ names them)


def run(cfg: TrainConfig, run_dir: Path, info: RunInfo | None = None) -> dict[str, Any]:
    """Train ``cfg.algo`` on ``cfg.env``, writing everything into ``run_dir``.

    Returns:
        The run's summary (also in ``run_dir/summary.json``): final and best eval score,
        progress, wall time, run directory.

    Raises:
        ConfigError: the config cannot run here; nothing has been written to ``run_dir``.
        TrainingError: a NaN loss or a failing env stopped the run (the last good checkpoint stays).
        RunStopped: SIGINT/SIGTERM stopped the run after a checkpoint.
    """
    from rlexp.lm.parallel import launched_world

    run_dir = Path(run_dir)
    rank, world = launched_world()
    if world > 1:  # accelerate launch / torchrun: data parallel, for the trainers that shard their batches
        if not trainer_class(cfg.algo.name).data_parallel:
            parallel = [n for n in ALGOS if trainer_class(n).data_parallel]
            raise ConfigError(f"launched as {world} processes: algo={cfg.algo.name} runs as one process; data "
                              f"parallelism is for algo={', '.join(parallel)}")
        if rank != 0:  # process 0 writes the run; the others do the same work into a scratch directory
            import tempfile

            quiet = dataclasses.replace(cfg, logger=dataclasses.replace(
                cfg.logger, progress="none", figures=False, video_interval_evals=0,
                wandb=dataclasses.replace(cfg.logger.wandb, mode="disabled")))
            with tempfile.TemporaryDirectory(prefix=f"rlexp-rank{rank}-") as scratch, \
                    contextlib.redirect_stdout(io.StringIO()):  # process 0 speaks for the run; errors still show
                return _build_and_run(quiet, Path(scratch) / "run", info or RunInfo(), resuming=False)
    check_writable_dir(run_dir, "run directory")
    if (run_dir / "metrics.jsonl").exists():
        raise ConfigError(f"run directory {run_dir} already holds a run; choose another hydra.run.dir "
                          f"(or continue it: rlexp resume {run_dir})")
    return _build_and_run(cfg, run_dir, info or RunInfo(), resuming=False)


def resume(run_dir: Path | str, trust: bool = False, budget: int | None = None) -> dict[str, Any]:
    """Continue the run in ``run_dir`` from its newest good checkpoint, in place.

    ``budget`` extends (or sets) the budget in the run's own unit (agent steps, games,
    examples, pairs, prompts: the total of the trainer's ``budget``). The run's own
    config.yaml is used otherwise.

    Raises:
        ConfigError: not a run directory, a config or checkpoint that does not fit, a run that
            already reached its budget; the run directory is left as it was.
    """
    from rlexp.runs import check_run_dir, load_run_config

    run_dir = check_run_dir(run_dir)
    check_writable_dir(run_dir, "run directory")
    cfg = load_run_config(run_dir, trust=trust)
    trainer_cls = trainer_class(cfg.algo.name)
    key, unit = trainer_cls.budget_key, trainer_cls.unit
    if budget is not None:
        cfg = _with_budget(cfg, key, budget)
    summary_file = run_dir / "summary.json"
    if summary_file.is_file():
        done = json.loads(summary_file.read_text()).get(unit.key, 0)
        if read(cfg, key) <= done:
            raise ConfigError(f"{run_dir} already finished its {done} {unit.many}; to train it longer: "
                              f"rlexp resume {run_dir} --budget N (N > {done})")
    command = (run_dir / "command.txt").read_text().strip() if (run_dir / "command.txt").is_file() else "rlexp train"
    return _build_and_run(cfg, run_dir, RunInfo(command=command), resuming=True)


def _with_budget(cfg: TrainConfig, key: str, budget: int) -> TrainConfig:
    """``cfg`` with the setting ``key`` ("total_steps" or "algo.total_<unit>") set to ``budget``."""
    if "." not in key:
        return dataclasses.replace(cfg, **{key: budget})
    section, field_name = key.split(".", 1)
    return dataclasses.replace(cfg, **{section: dataclasses.replace(getattr(cfg, section), **{field_name: budget})})


def _build_and_run(cfg: TrainConfig, run_dir: Path, info: RunInfo, resuming: bool) -> dict[str, Any]:
    """Build the trainer (everything that can refuse the config, before any file is written)
    and run its lifecycle; the process settings are put back afterwards."""

    with process_settings(cfg.device):
        seed_everything(cfg.seed)
        trainer = build_trainer(cfg, given_keys(info.overrides))
        try:
            return Lifecycle(cfg, run_dir, info, trainer, resuming).run()
        finally:
            trainer.close()


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


SHARED_GROUPS = ("env", "device", "logger")  # config groups every stage of a pipeline takes from the command


def run_pipeline(cfg: TrainConfig, run_dir: Path, info: RunInfo) -> dict[str, Any]:
    """``cfg``'s run; with ``cfg.pipeline`` (``experiment=rlhf_arithmetic``), its earlier stages
    first, in order, each a run of its own in ``run_dir/<k>_<algo>``, the last in
    ``run_dir/<n>_<algo>``. Each stage gets the command's env, device, logger and seed, its own
    overrides, and ``model.from_run`` / ``reward.from_run`` pointing at the earlier stage it
    starts from (unless set). ``run_dir/pipeline.json`` lists the stages' run directories.

    Returns:
        The last stage's summary.
    """
    if not cfg.pipeline:
        return run(cfg, run_dir, info)
    from rlexp.lm.parallel import barrier, launched_world
    from rlexp.trainers.base import pipeline_links

    names = [*cfg.pipeline, cfg.algo.name]
    unknown = [n for n in names if n not in ALGOS or not trainer_class(n).starts_from]
    if unknown:
        valid = [n for n in ALGOS if trainer_class(n).starts_from]
        raise ConfigError(f"pipeline stage {unknown[0]!r} is not a stage a pipeline can run; valid stages: "
                          f"{', '.join(valid)}")
    kept = _needed_stages(names)
    if len(kept) < len(names):  # e.g. DPO needs no reward model: its stage is not run
        print(f"pipeline: {', '.join(n for n in names if n not in kept)} skipped: algo={cfg.algo.name} does not "
              "use what it would train", flush=True)
    names = kept
    check_writable_dir(run_dir, "run directory")
    if (run_dir / "pipeline.json").exists():
        raise ConfigError(f"run directory {run_dir} already holds a pipeline; choose another hydra.run.dir")
    plan: list[tuple[str, Path]] = [(name, run_dir / f"{k}_{name}") for k, name in enumerate(names, start=1)]
    stages = []  # every stage's config, composed (and range-checked) before the first one trains
    for k, (name, stage_dir) in enumerate(plan):
        links = pipeline_links(trainer_class(name), plan[:k])
        if k == len(plan) - 1:  # the command's own config, its earlier stages linked; its command reruns it alone
            choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
            kept = [o for o in info.overrides if _kept_in_last_stage(o)]
            given = {o.split("=", 1)[0].lstrip("+~") for o in kept}
            own = [f"algo={name}", *(f"{g}={choices[g]}" for g in SHARED_GROUPS if choices.get(g)), *kept,
                   *(f"{key}={v}" for key, v in links.items() if key not in given)]
            stages.append((dataclasses.replace(_linked(cfg, links), pipeline={}), own))
        else:
            stages.append(_compose_stage(cfg, name, cfg.pipeline[name], links, info.overrides))
    record: dict[str, Any] = {"stages": []}
    for (name, stage_dir), (stage_cfg, overrides) in zip(plan, stages):
        stage_info = dataclasses.replace(info, overrides=tuple(overrides),
                                         command=shlex.join(["rlexp", "train", *overrides]))
        summary = run(stage_cfg, stage_dir, stage_info)
        record["stages"].append({"algo": name, "run_dir": str(stage_dir), "score_name": summary["score_name"],
                                 "score": summary["objective"]})
        if launched_world()[0] == 0:
            write_json_atomic(record, run_dir / "pipeline.json")
        barrier()  # data parallel: the next stage loads what process 0 exported
    return summary


def _needed_stages(names: list[str]) -> list[str]:
    """The stages of ``names`` the last one needs: itself, the stages it links to
    (``model.from_run``, ``reward.from_run``), theirs, and so on; in order."""
    from rlexp.trainers.base import pipeline_links

    needed = {len(names) - 1}
    for k in range(len(names) - 1, -1, -1):
        if k in needed:
            links = pipeline_links(trainer_class(names[k]), [(n, Path(str(i))) for i, n in enumerate(names[:k])])
            needed |= {int(str(path)) for path in links.values()}
    return [n for k, n in enumerate(names) if k in needed]


def _linked(cfg: TrainConfig, links: dict[str, str]) -> TrainConfig:
    """``cfg`` with the links set where the command left them unset."""
    if "model.from_run" in links and cfg.model is not None and not (cfg.model.from_run or cfg.model.name_or_path):
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, from_run=links["model.from_run"]))
    if "reward.from_run" in links and cfg.reward is not None and not cfg.reward.from_run:
        cfg = dataclasses.replace(cfg, reward=dataclasses.replace(cfg.reward, from_run=links["reward.from_run"]))
    return cfg


def _compose_stage(cfg: TrainConfig, name: str, stage_overrides: list[str], links: dict[str, str],
                   command: tuple[str, ...]) -> tuple[TrainConfig, list[str]]:
    """An earlier stage's config: ``algo=<name>``, the command's groups and keys that every
    stage shares (env, device, logger, seed), the stage's own overrides, then the links."""
    from hydra import compose
    from hydra.core.global_hydra import GlobalHydra

    if not GlobalHydra.instance().is_initialized():
        raise ConfigError("a pipeline (cfg.pipeline) runs from `rlexp train`, which composes its stages")
    choices = HydraConfig.get().runtime.choices
    shared = [f"{group}={choices[group]}" for group in SHARED_GROUPS if choices.get(group)]
    shared += [o for o in command if _shared_key(o)]
    given = {o.split("=", 1)[0] for o in stage_overrides}
    overrides = [f"algo={name}", *shared, f"seed={cfg.seed}", *stage_overrides,
                 *(f"{key}={value}" for key, value in links.items() if key not in given)]
    return to_typed(compose(config_name="train", overrides=overrides)), overrides


def _kept_in_last_stage(override: str) -> bool:
    """Whether the last stage's own command keeps a pipeline command's override: not the preset,
    the pipeline or the group choices (written out explicitly), every other key."""
    key = override.split("=", 1)[0].lstrip("+~")
    return not (key == "pipeline" or key.startswith("pipeline.") or key in ("experiment", "algo", *SHARED_GROUPS))


def _shared_key(override: str) -> bool:
    """Whether a command-line override sets a key inside a group every stage shares (env.max_operand=29)."""
    key = override.split("=", 1)[0].lstrip("+~")
    return "." in key and key.split(".", 1)[0] in SHARED_GROUPS


def run_seeds(cfg: TrainConfig, run_dir: Path, info: RunInfo) -> dict[str, Any]:
    """``cfg.seeds_per_job`` runs (seed, seed+1, ...): one run directory, or ``seed<N>/`` in it for each.

    Returns:
        The job's record: seeds, their final eval scores, run directories and the
        objective (their mean, what a sweeper maximizes).
    """
    seeds = [cfg.seed + k for k in range(cfg.seeds_per_job)]
    summaries = []
    for seed in seeds:
        if len(seeds) == 1:
            summaries.append(run_pipeline(cfg, run_dir, info))
            continue
        one = dataclasses.replace(cfg, seed=seed, seeds_per_job=1)
        extra = (f"seed={seed}", "seeds_per_job=1")
        kept = tuple(o for o in info.overrides if not o.startswith(("seed=", "seeds_per_job=")))
        seed_info = dataclasses.replace(info, overrides=kept + extra,
                                        command=shlex.join(["rlexp", "train", *kept, *extra]))
        summaries.append(run_pipeline(one, run_dir / f"seed{seed}", seed_info))
    scores = [s["objective"] for s in summaries]
    return {
        "status": "finished",
        "overrides": list(info.overrides),
        "seeds": seeds,
        "eval_returns": scores,
        "objective": float(np.mean(scores)),
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
        group=f"multirun-{Path(hc.sweep.dir).name}" if multirun else None,
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
            first = first_line(err)
            error = first if isinstance(err, TrainingError) else f"{type(err).__name__}: {first}"
            record = {"status": "failed", "overrides": list(overrides), "error": error,
                      "objective": float("nan")}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / JOB_LOG).write_text(log.getvalue())
    write_job_summary(run_dir, record)
    return record["objective"]


def _resume_from_hydra(cfg: DictConfig, hydra_dir: Path, overrides: tuple[str, ...], multirun: bool) -> float:
    """``rlexp train resume=RUN_DIR``: the run continues with its own config.yaml (``rlexp resume
    RUN_DIR --budget N`` is the way to train it longer)."""
    from rlexp.runs import check_run_dir

    _remove_if_empty(hydra_dir, Path.cwd())  # Hydra made an output dir; the run writes into RUN_DIR
    check_run_dir(cfg.resume)
    if multirun:
        raise ConfigError("resume= continues one run: drop -m (resume a sweep's jobs one by one: rlexp resume JOB_DIR)")
    extra = [o for o in overrides if not o.startswith("resume=")]
    if extra:
        raise ConfigError(f"resume={cfg.resume} continues the run with its own config.yaml; drop: {' '.join(extra)} "
                          f"(to train it longer: rlexp resume {cfg.resume} --budget N)")
    return resume(cfg.resume)["objective"]

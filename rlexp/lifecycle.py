"""The run lifecycle: what every training run has, whatever trainer does its work.

It owns the run directory (``config.yaml``, ``overrides.yaml``, ``command.txt``,
``metrics.jsonl``, ``summary.json``, ``figures/``, ``videos/``, ``checkpoints/``), the
sinks, the schedule of logs, evaluations and checkpoints (in the trainer's unit), the best
checkpoint, resume (checkpoint, RNG state, metrics cut back, the sinks' ids), SIGINT and
SIGTERM, the fault hooks the tests use, the non-finite guard and the closing lines. It drives
a :class:`~rlexp.trainers.base.Trainer` through that contract and names no algorithm, no
env and no sink type.

Read top to bottom, :meth:`Lifecycle.run` is a few phases, in the manner of Dopamine's
``Runner``: restore, open the run, train (``_run_train_phase``, with its scheduled logs,
evaluations and checkpoints), the final evaluation and checkpoint, the pictures, close.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from rlexp import faults
from rlexp.checkpoint import CheckpointError, CheckpointStore, atomic_write, step_name, write_json_atomic
from rlexp.config import TrainConfig, flatten
from rlexp.errors import ConfigError, RunStopped, TrainingError, first_line
from rlexp.loggers import METRICS_FILE, make_sinks
from rlexp.schedules import crossed
from rlexp.state import GracefulStop, rng_state, set_rng_state, truncate_metrics
from rlexp.trainers.base import Evaluation, Trainer, TrainerFault

CHECKPOINT_FORMAT = 2  # 2: the trainer's state under "trainer" (1: before the lifecycle/trainer split)
# config keys a resume may change (besides the trainer's budget): they do not alter what is
# learned up to the checkpoint
RESUMABLE_CHANGES = ("resume", "logger", "launcher")


@dataclass
class RunInfo:
    """What the caller knows about the run that the config does not."""

    command: str = "rlexp train"  # the command that reproduces this run
    overrides: tuple[str, ...] = ()  # the Hydra overrides of this run
    group: str | None = None  # the runs this one belongs with (a multirun: its sweep); the W&B group


@dataclass
class LifecycleState:
    """The lifecycle's own bookkeeping, saved in every checkpoint."""

    eval_index: int = 0  # evaluations made
    last_update: dict[str, float] = dataclasses.field(default_factory=dict)  # the latest update's metrics
    score: float = float("nan")  # the latest evaluation's score...
    score_std: float = float("nan")  # ...and its spread
    best_score: float = -float("inf")
    best_progress: int = 0  # where the best score was reached
    wall_s: float = 0.0  # wall time of earlier sessions of this run
    side_s: float = 0.0  # of which evaluations, checkpoints and pictures
    sinks: dict[str, Any] = dataclasses.field(default_factory=dict)  # what resumes the sinks (a W&B run id)


class Lifecycle:
    """One run of ``trainer`` in ``run_dir``; ``resuming``: continue the run there in place."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, info: RunInfo, trainer: Trainer, resuming: bool):
        self.cfg, self.run_dir, self.info, self.trainer, self.resuming = cfg, Path(run_dir), info, trainer, resuming
        self.store = CheckpointStore(self.run_dir / "checkpoints", cfg.checkpoint_keep_last)
        self.state = LifecycleState()
        self.resolved = OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)
        self.sinks: Any = None
        self.last_saved: int | None = None  # progress of the newest checkpoint
        self.buffers_restored = True
        self.last_text = ""  # the latest evaluation's line
        self.session_start = time.perf_counter()  # this session's wall clock starts (reset at each checkpoint)
        self.rate_from = (0, self.session_start)  # (progress, time) of the last log event: the rate's base

    # ------------------------------------------------------------------ the phases

    def run(self) -> dict[str, Any]:
        """The whole run; returns its summary (also written to summary.json)."""
        restored = self._restore() if self.resuming else None
        self._open_run()
        try:
            self._start(restored)
            self.session_start = time.perf_counter()
            with GracefulStop() as stop:
                self._run_train_phase(stop)
                self._run_eval_phase()
                self._checkpoint(final=True)
            self._export()
            drawn = self._draw_figures(final=True) if self.cfg.logger.figures else []
            return self._finish(drawn)
        finally:
            self.sinks.close()

    def _open_run(self) -> None:
        """The run directory's files (or, resuming, the metrics cut back to the checkpoint), and the sinks."""
        if self.resuming:
            saved = OmegaConf.to_container(OmegaConf.load(self.run_dir / "config.yaml"), resolve=True)
            if saved != self.resolved:  # e.g. an extended budget
                (self.run_dir / "config.yaml").write_text(OmegaConf.to_yaml(self.resolved))
            (self.run_dir / "summary.json").unlink(missing_ok=True)
        else:
            self._write_run_files()
        truncate_metrics(self.run_dir / METRICS_FILE, self.trainer.progress)
        t, c = self.trainer, self.cfg
        self.sinks = make_sinks(c.logger, self.run_dir, self.resolved, title=f"{c.algo.name} {c.env.id} seed={c.seed}",
                                total=t.schedule.total, unit=t.unit.many, unit_one=t.unit.one,
                                rate_metric=t.rate_metric, group=self.info.group,
                                resume_state=self.state.sinks)
        self.state.sinks = self.sinks.resume_state()

    def _write_run_files(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.yaml").write_text(OmegaConf.to_yaml(self.resolved))
        (self.run_dir / "overrides.yaml").write_text(OmegaConf.to_yaml(list(self.info.overrides)))
        (self.run_dir / "command.txt").write_text(self.info.command + "\n")

    def _start(self, restored: dict[str, Any] | None) -> None:
        """Ready the trainer (resuming: bring it back to the checkpoint) and say how the run starts."""
        t = self.trainer
        for note in t.start(resumed=restored is not None):
            self.sinks.message(note)
        if restored is None:
            if self.resuming:  # killed before its first checkpoint: starting over is exact too
                self.sinks.message(f"{self.run_dir} has no checkpoint yet: starting the run over in place")
            return
        set_rng_state(restored["rng"])
        if not self.buffers_restored:
            self.sinks.message("note: no replay buffer or rollout was saved with this checkpoint (checkpoint_replay="
                               "false, or an older checkpoint used as a fallback): learning continues from an empty "
                               "one, so the run is not identical to an uninterrupted one")
        if t.device.type != "cpu":
            self.sinks.message(f"note: resumed on {t.device}: GPU kernels are not deterministic, so the continued "
                               "run is correct but not bit-identical to an uninterrupted one (docs/resume.md)")
        self.sinks.message(f"resumed {self.run_dir} at {t.unit.one} {t.progress} of {t.schedule.total}")

    def _run_train_phase(self, stop: GracefulStop) -> None:
        """Advance the trainer to its budget; log, evaluate and checkpoint when due."""
        t, plan = self.trainer, self.trainer.schedule
        kill_at = faults.kill_step()  # tests: a SIGKILL at this progress (RLEXP_FAULT=step:N)
        self.rate_from = (t.progress, time.perf_counter())
        while t.progress < plan.total:
            before = t.progress
            if kill_at is not None and before >= kill_at:
                faults.kill()
            try:
                update = t.advance()
            except TrainerFault as fault:
                self._stop_on_fault(fault, before)
            if update:
                self._check_finite(update)
            if t.pictures_due is not None:
                self._draw_figures(final=False, suffix=t.pictures_due)
                t.pictures_due = None
            after = t.progress
            if crossed(before, after, plan.log_interval):
                self._log_training()
            if crossed(before, after, plan.eval_interval) and after < plan.total:
                self._run_eval_phase()
            if (crossed(before, after, plan.checkpoint_interval) and after < plan.total) or stop.signum is not None:
                self._checkpoint_or_stop(stop)

    def _run_eval_phase(self) -> None:
        """Evaluate, log it, keep the best checkpoint, and record a video when due."""
        started = time.perf_counter()
        t, index = self.trainer, self.state.eval_index
        result: Evaluation = t.evaluate(index)
        self.state.eval_index += 1
        self.state.score, self.state.score_std, self.last_text = result.score, result.score_std, result.text
        self.sinks.log(t.progress, {**result.metrics, "eval/score": result.score})  # the score, whatever the family
        self.sinks.log_evaluation(t.progress, result.score, result.text)
        for name, text in result.records.items():
            atomic_write(self.run_dir / name, lambda f, data=text.encode(): f.write(data))
        for key, rows in result.tables.items():
            self.sinks.log_table(t.progress, key, rows)
        every = self.cfg.logger.video_interval_evals
        if every and index % every == 0:
            path = self.run_dir / "videos" / f"train_{t.unit.one}{t.progress}.mp4"
            metrics = t.record_video(path, index)
            self.sinks.log_video(t.progress, "eval/video", path)
            self.sinks.log(t.progress, metrics)
        pictures = self.cfg.logger.figure_interval_evals
        if self.cfg.logger.figures and pictures and index % pictures == 0:
            self._draw_figures(final=False, suffix=f"_eval{index}")
        if result.score > self.state.best_score:  # returns oscillate (DQN): keep the best policy too
            self.state.best_score, self.state.best_progress = result.score, t.progress
            try:
                self.store.save_best(t.progress, {"trainer": t.state_dict(), "step": t.progress,
                                                  "config": self.resolved, "format": CHECKPOINT_FORMAT})
            except CheckpointError as err:
                self.sinks.message(f"warning: {err}")
        self.state.side_s += time.perf_counter() - started

    def _log_training(self) -> None:
        t, now = self.trainer, time.perf_counter()
        done, since = self.rate_from
        metrics = {t.rate_metric: (t.progress - done) / (now - since), **t.log_metrics(), **self.state.last_update}
        self.sinks.log(t.progress, metrics)
        self.rate_from = (t.progress, time.perf_counter())

    def _finish(self, drawn: list[str]) -> dict[str, Any]:
        """summary.json and the closing lines."""
        s, t, c = self.state, self.trainer, self.cfg
        wall_s = s.wall_s + time.perf_counter() - self.session_start
        name = t.score_name
        summary = {"run_dir": str(self.run_dir), t.unit.key: t.progress, "unit": t.unit.many, "score_name": name,
                   "wall_s": wall_s,
                   "train_wall_s": wall_s - s.side_s,  # without evaluations, checkpoints and pictures
                   f"{name}_mean": s.score, f"{name}_std": s.score_std, f"best_{name}": s.best_score,
                   f"best_eval_{t.unit.one}": s.best_progress, "objective": s.score, **t.summary()}
        write_json_atomic(summary, self.run_dir / "summary.json")
        self.sinks.end_progress()
        keep = f"the last {c.checkpoint_keep_last}" if c.checkpoint_keep_last else "all"
        files = {"config.yaml, command.txt": "what ran, and how to run it again", **self.sinks.files(),
                 **{f"{name}/": what for name, (what, _) in t.exports().items()},
                 "checkpoints/": f"step_<N>.pt ({keep}), best.pt (best eval), latest.pt, manifest.json",
                 **({"figures/": ", ".join(f"{n}.png" for n in drawn)} if drawn else {})}
        self.sinks.message(
            f"done: {t.progress} {t.unit.many} in {wall_s:.1f}s; final {self.last_text} "
            f"(best {s.best_score:.4g} at {t.unit.one} {s.best_progress})\n"
            f"run directory: {self.run_dir}\n" + "\n".join(f"  {name:<25} {what}" for name, what in files.items()))
        return summary

    def _export(self) -> None:
        """The trainer's exports (e.g. a model directory for the next stage), each written to a
        temporary directory and renamed into place: a reader never sees half of one."""
        for name, (_, write) in self.trainer.exports().items():
            final, temporary = self.run_dir / name, self.run_dir / f".{name}.tmp"
            shutil.rmtree(temporary, ignore_errors=True)
            write(temporary)
            shutil.rmtree(final, ignore_errors=True)
            temporary.rename(final)

    # ------------------------------------------------------------------ checkpoints and resume

    def _checkpoint(self, final: bool = False) -> Path | None:
        """Save the full state at the trainer's progress; a failed periodic one is a warning."""
        t = self.trainer
        if self.last_saved == t.progress:
            return self.store.dir / step_name(t.progress)
        started = time.perf_counter()
        bad = t.non_finite()
        if bad:  # never replace a good checkpoint with a diverged one
            raise TrainingError(f"non-finite values in {bad} at {t.unit.one} {t.progress}; {self._last_good()}")
        self.state.wall_s += time.perf_counter() - self.session_start
        self.session_start = time.perf_counter()
        state = {"trainer": t.state_dict(), "step": t.progress, "config": self.resolved,
                 "lifecycle": dataclasses.asdict(self.state), "rng": rng_state(), "format": CHECKPOINT_FORMAT}
        buffers = t.buffer_state() if self.cfg.checkpoint_replay else None
        try:
            path = self.store.save(t.progress, state, buffers)
        except CheckpointError as err:
            if final:
                raise TrainingError(str(err)) from None
            self.sinks.message(f"warning: {err}")
            return None
        self.last_saved = t.progress
        self.state.side_s += time.perf_counter() - started
        return path

    def _checkpoint_or_stop(self, stop: GracefulStop) -> None:
        """A periodic checkpoint; after SIGINT/SIGTERM, the checkpoint and a clean stop."""
        saved = self._checkpoint()
        if stop.signum is None:
            return
        t, name = self.trainer, signal.Signals(stop.signum).name
        where = f"checkpoint saved ({saved})" if saved else self._last_good()
        self.sinks.end_progress()
        self.sinks.message(f"stopped by {name} at {t.unit.one} {t.progress} of {t.schedule.total}: {where}.\n"
                           f"resume with: rlexp resume {self.run_dir}")
        raise RunStopped(f"stopped by {name}", 128 + stop.signum)

    def _restore(self) -> dict[str, Any] | None:
        """The newest good checkpoint, checked against the run's config and loaded into the
        trainer; None when the run has none yet (it starts over, which is exact too)."""
        found = self.store.latest(need_buffers=True)
        self.store.remove_strays()
        if found is None:
            return None
        entry, state, buffers = found
        path = self.store.dir / entry.main
        written = state.get("format") if isinstance(state, dict) else None
        if written != CHECKPOINT_FORMAT or "trainer" not in state:
            raise ConfigError(f"{path} is not a resumable checkpoint of this rlexp (format {written!r}, this rlexp "
                              f"writes {CHECKPOINT_FORMAT}); it may come from an older rlexp: start a new run")
        self._check_same_config(path, state.get("config") or {})
        try:
            self.trainer.load_state_dict(state["trainer"])
            if buffers is not None:
                self.trainer.load_buffer_state(buffers)
        except (RuntimeError, KeyError, ValueError, TypeError) as err:
            raise ConfigError(f"checkpoint {path} does not fit this run's config: "
                              f"{first_line(err) or type(err).__name__}") from None
        self.state = LifecycleState(**state["lifecycle"])
        self.last_saved = state["step"]
        self.buffers_restored = buffers is not None or self.trainer.buffer_state() is None
        return state

    def _check_same_config(self, path: Path, saved: dict[str, Any]) -> None:
        ours, theirs = flatten(self.resolved), flatten(saved)
        may_change = (*RESUMABLE_CHANGES, self.trainer.budget_key)
        differs = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k) and not k.startswith(may_change))
        if differs:
            shown = ", ".join(differs[:5]) + (", ..." if len(differs) > 5 else "")
            raise ConfigError(f"checkpoint {path} was written by a different config than "
                              f"{self.run_dir / 'config.yaml'} (differs in: {shown}); it cannot resume this run")

    # ------------------------------------------------------------------ faults and pictures

    def _check_finite(self, update: dict[str, float]) -> None:
        """Record the update's metrics; stop the run at a NaN or infinite loss."""
        bad = [k for k, v in update.items() if k.startswith("loss/") and not math.isfinite(v)]
        if bad:
            t = self.trainer
            raise TrainingError(f"{bad[0]} is {update[bad[0]]} at {t.unit.one} {t.progress}; the run stopped: "
                                f"{self._last_good()} (lower algo.lr or set algo.max_grad_norm, then start a new "
                                "run or resume from it)")
        self.state.last_update = update

    def _stop_on_fault(self, fault: TrainerFault, at: int) -> None:
        """The trainer's work raised: checkpoint its (unchanged) state, stop with one line."""
        saved = self._checkpoint()
        kept = f"checkpoint saved at {self.trainer.unit.one} {at} ({saved})" if saved else self._last_good()
        raise TrainingError(f"{fault.where} raised {type(fault.error).__name__} at {self.trainer.unit.one} {at}: "
                            f"{first_line(fault.error)}; {kept}; resume with: rlexp resume {self.run_dir}") from fault.error

    def _last_good(self) -> str:
        path = self.store.latest_path()
        return f"the last good checkpoint is {path}" if path else "no checkpoint was written yet"

    def _draw_figures(self, final: bool, suffix: str = "") -> list[str]:
        """The trainer's pictures -> figures/<name><suffix>.png and the sinks' images."""
        from rlexp.plots import save_figure  # matplotlib: imported only when drawing

        started = time.perf_counter()
        figures = self.trainer.figures(final)
        for name, figure in figures.items():
            path = save_figure(figure, self.run_dir / "figures" / f"{name}{suffix}.png")
            self.sinks.log_image(self.trainer.progress, f"figures/{name}", path)
        self.state.side_s += time.perf_counter() - started
        return list(figures)

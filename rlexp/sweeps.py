"""Multirun support: what happens around Hydra's sweepers and launchers.

- ``SweepReport`` (a Hydra callback, in conf/train.yaml): when a multirun ends, it names
  the failed jobs with their log files, writes ``best.yaml`` (the best job's overrides,
  runnable with ``rlexp train --from``) and makes the command exit non-zero on failure.
- The resumable Optuna study is a sweeper of its own, ``hydra/sweeper: rlexp_optuna``
  (``hydra_plugins/rlexp_sweepers``).
- ``job_dirs`` / ``job_summary``: the per-job records that ``rlexp report`` tabulates.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

JOB_FILE = "job.json"  # a job's outcome: overrides, objective, per-seed returns, or its error
JOB_LOG = "job.log"  # a job's console output (and traceback, if it failed)
BEST_FILE = "best.yaml"

# what the last multirun in this process left behind (read by `rlexp train` for its exit code)
last_sweep: dict[str, Any] = {}


def job_dirs(sweep_dir: Path | str) -> list[Path]:
    """The job directories of a sweep (those holding a job record), in job order."""
    dirs = [p.parent for p in Path(sweep_dir).glob(f"*/{JOB_FILE}")]

    def number(path: Path) -> tuple[int, str]:
        head = path.name.split("_", 1)[0]
        return (int(head), path.name) if head.isdigit() else (sys.maxsize, path.name)

    return sorted(dirs, key=number)


def job_summary(job_dir: Path) -> dict[str, Any]:
    return json.loads((Path(job_dir) / JOB_FILE).read_text())


def write_job_summary(job_dir: Path, record: dict[str, Any]) -> None:
    job_dir.mkdir(parents=True, exist_ok=True)
    tmp = job_dir / (JOB_FILE + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(job_dir / JOB_FILE)


def summarize(sweep_dir: Path | str) -> dict[str, Any]:
    """Jobs, failed jobs and the best finished job of a sweep; writes ``best.yaml``."""
    sweep_dir = Path(sweep_dir)
    jobs = [(d, job_summary(d)) for d in job_dirs(sweep_dir)]
    failed = [(d, s) for d, s in jobs if s.get("status") != "finished"]
    finished = [(d, s) for d, s in jobs if s.get("status") == "finished" and not math.isnan(s["objective"])]
    best = max(finished, key=lambda item: item[1]["objective"], default=None)
    if best is not None:
        directory, record = best
        text = OmegaConf.to_yaml(OmegaConf.create({
            "objective": record["objective"],
            "job": directory.name,
            "overrides": record["overrides"],
        }))
        (sweep_dir / BEST_FILE).write_text(
            f"# The best job of {sweep_dir} (highest mean final evaluation score: the eval return of gym runs, "
            "the score of games). Run it again with:\n"
            f"#   rlexp train --from {sweep_dir / BEST_FILE} [more overrides]\n" + text
        )
    return {"jobs": jobs, "failed": failed, "best": best}


class SweepReport(Callback):
    """Reports a multirun's outcome when it ends (see the module docstring)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        last_sweep.clear()
        last_sweep["dir"] = Path(str(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        outcome = summarize(sweep_dir)
        last_sweep.update(outcome)
        jobs, failed, best = outcome["jobs"], outcome["failed"], outcome["best"]
        lines = [f"sweep {sweep_dir}: {len(jobs) - len(failed)} of {len(jobs)} jobs finished"]
        if best is not None:
            lines.append(f"  best: {best[0].name}, mean final evaluation score {best[1]['objective']:.2f} "
                         f"-> {sweep_dir / BEST_FILE}")
        for directory, record in failed:
            lines.append(f"  FAILED {directory.name}: {record.get('error', 'no result')} (log: {directory / JOB_LOG})")
        lines.append(f"  table: rlexp report {sweep_dir}")
        print("\n".join(lines), file=sys.stderr if failed else sys.stdout, flush=True)

"""Find run directories, read what each holds, and group runs that differ only by seed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlexp.config import flatten
from rlexp.errors import first_line
from rlexp.loggers.jsonl import read_metrics

SCORE = "eval/score"  # every run's evaluation score (the lifecycle logs it): higher is better

# config keys that do not change what is learned: never a reason to split groups
IGNORED_PREFIXES = ("seed", "seeds_per_job", "logger.", "launcher.", "device.", "checkpoint_interval_steps",
                    "model.from_run", "reward.from_run")  # an RLHF stage's earlier runs differ by seed too


@dataclass
class RunData:
    """One run directory: its flattened config and its evaluations."""

    path: Path
    config: dict[str, Any]
    evals: list[tuple[int, float]]  # (progress, eval score): agent steps and mean eval return for gym runs
    finished: bool  # summary.json written: the run reached its end
    problems: list[str] = field(default_factory=list)
    score: str = "eval return"  # what the score is (summary.json's score_name)
    unit: str = "agent steps"  # what progress counts (summary.json's unit)
    kl_points: list[dict[str, float]] = field(default_factory=list)  # RLHF runs: each evaluation's kl, gold, reward

    def final_score(self, last_evals: int = 1) -> float:
        """The mean of the last ``last_evals`` evaluation returns (NaN without evaluations)."""
        if not self.evals:
            return float("nan")
        return float(np.mean([r for _, r in self.evals[-last_evals:]]))


def read_run(path: Path) -> RunData | None:
    """A run directory's data, or None when it is not one (no config.yaml or metrics.jsonl)."""
    import yaml

    config_file, metrics_file = path / "config.yaml", path / "metrics.jsonl"
    if not (config_file.is_file() and metrics_file.is_file()):
        return None
    problems = []
    try:
        config = flatten(yaml.safe_load(config_file.read_text()) or {})
    except yaml.YAMLError as err:
        return RunData(path, {}, [], False, [f"unreadable config.yaml: {first_line(err)}"])
    text = metrics_file.read_text(encoding="utf-8", errors="replace")
    rows = read_metrics(metrics_file)
    if text and not text.endswith("\n"):
        problems.append("metrics.jsonl ends in a half-written line (the run was killed); it was skipped")
    key = SCORE if any(SCORE in r for r in rows) else "eval/episode_return"  # runs before the generic score
    evals = [(int(r["step"]), float(r[key])) for r in rows if r.get(key) is not None]
    summary_file = path / "summary.json"
    finished = summary_file.is_file()
    try:
        summary = json.loads(summary_file.read_text()) if finished else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        summary = {}
        problems.append("summary.json is not JSON; the score and unit names were not read from it")
    if not finished:
        problems.append("no summary.json: the run did not finish")
    if not evals:
        problems.append("no evaluation in metrics.jsonl")
    evals_kl = [r for r in rows if "eval/kl" in r and "eval/gold" in r]
    nan = float("nan")  # greedy gold: runs from before it was measured have none; reward: DPO without a reward model
    kl_points = [{"step": 0, "kl": 0.0, "gold": float(evals_kl[0]["eval/sft_gold"]),  # the start: the SFT model
                  "gold_greedy": float(evals_kl[0].get("eval/sft_gold_greedy", nan)),
                  "reward": float(evals_kl[0].get("eval/sft_reward", nan))}] if evals_kl and "eval/sft_gold" in evals_kl[0] else []
    kl_points += [{"step": int(r["step"]), "kl": float(r["eval/kl"]), "gold": float(r["eval/gold"]),
                   "gold_greedy": float(r.get("eval/gold_greedy", nan)), "reward": float(r.get("eval/reward", nan))}
                  for r in evals_kl]
    return RunData(path, config, evals, finished, problems, summary.get("score_name", "eval_return").replace("_", " "),
                   summary.get("unit", "agent steps"), kl_points)


def collect(paths: list[Path]) -> list[RunData]:
    """Every run directory under ``paths`` (a path may itself be a run directory)."""
    runs, seen = [], set()
    for root in paths:
        for config in sorted([root / "config.yaml", *Path(root).rglob("config.yaml")]):
            directory = config.parent.resolve()
            if directory in seen or not config.is_file():
                continue
            seen.add(directory)
            run = read_run(config.parent)
            if run is not None:
                runs.append(run)
    return runs


def group_key(run: RunData, by: list[str] | None, ignore: tuple[str, ...] = ()) -> tuple[tuple[str, Any], ...]:
    """What identifies the run's group: the ``by`` keys, or the whole config minus seed and
    bookkeeping; minus the ``ignore`` keys either way."""
    if by:
        return tuple((key, run.config.get(key)) for key in by if key not in ignore)
    return tuple(sorted((k, v) for k, v in run.config.items() if not k.startswith(IGNORED_PREFIXES) and k not in ignore))


def group_runs(runs: list[RunData], by: list[str] | None = None, ignore: tuple[str, ...] = ()) -> dict[str, list[RunData]]:
    """Runs grouped by :func:`group_key`, each group named by what sets it apart from the others
    (``ignore``: keys that never split a group, e.g. the game, to pool a method's runs on all games)."""
    groups: dict[tuple, list[RunData]] = {}
    for run in runs:
        groups.setdefault(group_key(run, by, ignore), []).append(run)
    keys = list(groups)
    if by:
        names = [" ".join(f"{k}={v}" for k, v in key) or "all runs" for key in keys]
        return dict(zip(names, groups.values()))
    # "<algo> <env>", then the keys that differ among the groups of the same algorithm and env
    base = {key: (dict(key).get("algo.name"), dict(key).get("env.id")) for key in keys}
    names = []
    for key in keys:
        siblings = [k for k in keys if base[k] == base[key]]
        d = dict(key)
        varying = sorted({k for sib in siblings for k, v in sib if any(dict(o).get(k) != v for o in siblings)})
        label = " ".join(f"{k}={d.get(k)}" for k in varying)
        names.append(" ".join(str(x) for x in base[key] if x is not None) + (f" {label}" if label else ""))
    return dict(zip(names, groups.values()))

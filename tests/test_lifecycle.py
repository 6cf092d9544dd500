"""The run lifecycle drives any trainer through the contract: a toy family counted in games
gets run files, schedule, sinks, checkpoints, exact resume and pictures without a line of
lifecycle code of its own. And the house rules the lifecycle split set up: no import cycle
inside rlexp/, no function over 60 lines, and a lifecycle that names no algorithm, no env
feature and no sink type."""

from __future__ import annotations

import ast
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from rlexp import config
from rlexp.lifecycle import RunInfo
from rlexp.loggers.jsonl import read_metrics
from rlexp.train import _build_and_run, run
from rlexp.trainers.base import Evaluation, Schedule, Trainer, Unit
from tests.conftest import TINY, compose_train

RLEXP = Path(__file__).resolve().parents[1] / "rlexp"


@dataclass
class ToyConfig:
    name: str = "toy"  # registry key
    lr: float = 0.3  # step size towards the target
    total_games: int = 12  # games to play


class ToyTrainer(Trainer):
    """A "game" nudges a weight towards a noisy target; the score is minus the distance."""

    unit = Unit(key="games", one="game", many="games")
    score_name = "eval_distance"
    rate_metric = "perf/games_per_s"
    budget_key = "algo.total_games"

    def __init__(self, cfg, device):
        self.cfg, self.device = cfg, device
        self.schedule = Schedule(cfg.algo.total_games, log_interval=2, eval_interval=4, checkpoint_interval=4)
        self.w = torch.zeros(1)
        self.rng = torch.Generator().manual_seed(cfg.seed)
        self.progress, self.started, self.closed = 0, None, False

    def start(self, resumed):
        self.started = resumed
        return ["toy: ready"]

    def advance(self):
        target = 1.0 + 0.1 * torch.randn(1, generator=self.rng)
        loss = float((self.w - target).pow(2))
        self.w += self.cfg.algo.lr * (target - self.w)
        self.progress += 1
        return {"loss/toy": loss}

    def log_metrics(self):
        return {"train/w": float(self.w)}

    def evaluate(self, index):
        distance = float((self.w - 1.0).abs())
        return Evaluation(-distance, 0.0, {"eval/distance": distance}, f"eval distance {distance:.3f}")

    def figures(self, final):
        import matplotlib.figure

        return {"toy": matplotlib.figure.Figure(figsize=(1, 1))} if final else {}

    def state_dict(self):
        return {"w": self.w.clone(), "rng": self.rng.get_state(), "progress": self.progress}

    def load_state_dict(self, state):
        self.w, self.progress = state["w"].clone(), state["progress"]
        self.rng.set_state(state["rng"])

    def non_finite(self):
        return "" if bool(torch.isfinite(self.w).all()) else "w"

    def close(self):
        self.closed = True


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(sys.modules, "rlexp_test_toy", sys.modules[__name__])
    monkeypatch.setitem(config.ALGOS, "toy", config.Algo(ToyConfig, "rlexp_test_toy:ToyTrainer",
                                                         trainer="rlexp_test_toy:ToyTrainer"))

    def make(**algo):
        return dataclasses.replace(compose_train([*TINY, "logger.log_interval_steps=2"]), algo=ToyConfig(**algo))

    return make


def test_a_new_family_gets_the_whole_run_lifecycle(toy, tmp_path):
    summary = run(toy(), tmp_path / "run")
    run_dir = tmp_path / "run"
    assert {"config.yaml", "overrides.yaml", "command.txt", "metrics.jsonl", "summary.json"} <= {
        p.name for p in run_dir.iterdir()}
    assert summary["games"] == 12 and summary["best_eval_game"] in (4, 8, 12) and summary["objective"] < 0
    assert json.loads((run_dir / "summary.json").read_text())["eval_distance_mean"] == summary["objective"]
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in rows if "perf/games_per_s" in r] == [2, 4, 6, 8, 10, 12]  # every 2 games
    assert [r["step"] for r in rows if "eval/distance" in r] == [4, 8, 12]
    assert all("loss/toy" in r for r in rows if "perf/games_per_s" in r)
    assert [int(p.name[5:15]) for p in sorted((run_dir / "checkpoints").glob("step_*.pt"))] == [4, 8, 12]
    assert (run_dir / "figures" / "toy.png").is_file()


def test_a_new_family_resumes_exactly(toy, tmp_path):
    run(toy(total_games=12), tmp_path / "whole")
    run(toy(total_games=8), tmp_path / "parts")
    cfg = toy(total_games=12)  # the same run, its budget extended: resumed from its game-8 checkpoint
    _build_and_run(cfg, tmp_path / "parts", RunInfo(), resuming=True)

    def rows(name):
        return [{k: v for k, v in r.items() if not k.startswith("perf/")}
                for r in read_metrics(tmp_path / name / "metrics.jsonl")]

    assert rows("parts") == rows("whole") and len(rows("whole")) == 9
    from rlexp.checkpoint import load_checkpoint

    final = [load_checkpoint(tmp_path / name / "checkpoints" / "latest.pt")["trainer"]["w"] for name in ("whole", "parts")]
    assert torch.equal(*final)


def test_a_nan_loss_stops_any_family(toy, tmp_path, monkeypatch):
    from rlexp.errors import TrainingError

    monkeypatch.setattr(ToyTrainer, "advance", lambda self: (setattr(self, "progress", self.progress + 1),
                                                             {"loss/toy": float("nan")})[1])
    with pytest.raises(TrainingError, match=r"^loss/toy is nan at game 1; the run stopped: no checkpoint was written"):
        run(toy(), tmp_path / "run")


# ------------------------------------------------------------------ the house rules


def _modules() -> dict[str, Path]:
    out = {}
    for path in RLEXP.rglob("*.py"):
        name = ".".join(path.relative_to(RLEXP.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def test_no_import_cycle_inside_rlexp():
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rlexp"):
                deps |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
        graph[name] = {d for d in deps if d in modules and d != name and not d.startswith(name + ".")
                       and not name.startswith(d + ".")}
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles


def test_no_function_longer_than_60_lines():
    long = [f"{path.relative_to(RLEXP.parent)}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path in _modules().values() for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60]
    assert not long


def test_the_lifecycle_names_no_env_feature_and_no_sink_type():
    source = (RLEXP / "lifecycle.py").read_text()
    for word in ("life_loss", "clip_reward", "protocol", "final_obs", "Wandb", "wandb_", "Jsonl", "Console",
                 "episode_return", "gym"):
        assert word not in source, word
    trainer = (RLEXP / "trainers" / "gym.py").read_text()
    for word in ("life_loss", "clip_reward", "atari", "ale_py", "Wandb", "Console"):
        assert word not in trainer, word


def test_family_knowledge_lives_in_the_registry_and_the_trainer_classes():
    """Outside algos/, trainers/, games/ and lm/ (and config/, which holds the registry), no
    code names an algorithm: no string that is an algorithm's name, no algorithm's own config
    field. Help texts and examples may (they are docstrings and messages, not logic)."""
    from rlexp.config import ALGOS

    fields = {"buffer_capacity_transitions", "replay_window_positions", "samples_per_prompt", "total_games",
              "total_examples", "total_pairs", "total_prompts"}  # read only by their family
    found = []
    for path in sorted(RLEXP.rglob("*.py")):
        rel = path.relative_to(RLEXP)
        if rel.parts[0] in ("algos", "trainers", "games", "lm", "config"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in ALGOS:
                found.append(f"{rel}:{node.lineno} {node.value!r}")
            if isinstance(node, ast.Attribute) and node.attr in fields:
                found.append(f"{rel}:{node.lineno} .{node.attr}")
    assert not found

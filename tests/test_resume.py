"""Runs that survive: SIGKILL at arbitrary points (a checkpoint write included), graceful
SIGINT/SIGTERM, NaN losses and failing envs; resumed runs end identical to uninterrupted ones."""

import json
import os
import signal
import subprocess
import time

import pytest
import torch

from rlexp.checkpoint import CheckpointStore, load_checkpoint
from rlexp.state import GracefulStop
from rlexp.train import TrainingError, resume, run
from tests.conftest import RLEXP, cli, compose_train

pytestmark = pytest.mark.slow  # learning, subprocesses or whole pipelines: left out of make test-fast

# small budgets, deterministic CPU settings, a checkpoint every 256 agent steps
SINKS = ["logger=none", "logger.progress=none", "logger.figures=false", "device.torch_threads=1"]
COMMON = ["total_steps=2048", "checkpoint_interval_steps=256", "eval_interval_steps=1024", "eval_episodes=2",
          "logger.log_interval_steps=128", *SINKS]
CASES = {
    "dqn": ["algo=dqn", "env=cartpole", "algo.learning_starts_steps=300", "algo.train_interval_steps=16",
            "algo.updates_per_train=2"],
    "ppo": ["algo=ppo", "env=cartpole", "algo.rollout_steps=96"],  # a checkpoint lands mid-rollout
    "q_learning": ["algo=q_learning", "env=maze"],
    # off-policy continuous control: MuJoCo restored by the action replay; the critics, actor, targets,
    # the temperature and its optimizer, the policy's noise generator and the replay
    "sac": ["algo=sac", "env=hopper", "algo.learning_starts_steps=300", "algo.batch_size=64",
            "network.hidden_sizes=[64,64]"],
    "td3": ["algo=td3", "env=pendulum", "algo.learning_starts_steps=300", "algo.batch_size=64",
            "network.hidden_sizes=[64,64]", "algo.train_interval_steps=2", "algo.updates_per_train=2"],
    # Atari: ALE's vector env restored by the action replay, the frame store in the buffers file
    # the frame store with all of Rainbow's parts: the sum tree, the noise generator and the n-step
    # successors are state a resume must restore (plain DQN's resume is the cartpole case)
    "rainbow_pong": ["algo=rainbow", "env=pong", "env.max_episode_frames=800", "env.num_threads=1",
                     "total_steps=600", "algo.learning_starts_steps=100", "algo.buffer_capacity_transitions=2000",
                     "algo.train_interval_steps=4", "checkpoint_interval_steps=128", "eval_interval_steps=256",
                     "eval_episodes=1"],
    # self-play, counted in games: the network, optimizer, replay window, games in progress and RNGs
    "alphazero": ["algo=alphazero", "env=tictactoe", "network.hidden_sizes=[32]", "algo.total_games=160",
                  "algo.concurrent_games=16", "algo.simulations=8", "algo.log_interval_games=16",
                  "algo.checkpoint_interval_games=40", "algo.eval_interval_games=80", "algo.eval_games=4",
                  "algo.eval_opponents=[random]", "algo.train_interval_games=16", "algo.updates_per_train=4",
                  "algo.batch_size=32", "algo.learning_starts_positions=64"],
    # a language-model stage, counted in examples: LoRA adapters, AdamW, the data order and its RNG
    "sft": ["algo=sft", "env=arithmetic", "algo.total_examples=384", "algo.batch_size=16", "algo.dataset_examples=100",
            "algo.log_interval_examples=32", "algo.checkpoint_interval_examples=96", "algo.eval_interval_examples=192",
            "algo.eval_prompts=8", "algo.max_answer_tokens=4", "lora.dropout=0.1"],
    # the reward model, counted in pairs: its new scalar head trains beside the adapters
    "reward_model": ["algo=reward_model", "env=arithmetic", "algo.total_pairs=192", "algo.batch_size=8",
                     "algo.dataset_pairs=64", "algo.log_interval_pairs=16", "algo.checkpoint_interval_pairs=48",
                     "algo.eval_interval_pairs=96", "algo.eval_pairs=16", "lora.dropout=0.1"],
    # the RL stage, counted in prompts, from the two runs above: the answers' sampler, the minibatch
    # order, the value head, the adaptive KL coefficient and the samples written so far (grpo is the
    # same trainer without the value head)
    "rlhf_ppo": ["algo=rlhf_ppo", "env=arithmetic", "algo.total_prompts=64", "algo.batch_prompts=8",
                 "algo.minibatch_answers=4", "algo.log_interval_prompts=8", "algo.checkpoint_interval_prompts=16",
                 "algo.eval_interval_prompts=32", "algo.eval_prompts=8", "algo.kl_target=0.1",
                 "model.from_run={sft}", "reward.from_run={reward_model}"],
    # the same trainer with RLOO's groups: two answers per prompt, the KL in the reward
    "rloo": ["algo=rloo", "env=arithmetic", "algo.total_prompts=64", "algo.batch_prompts=4",
             "algo.samples_per_prompt=2", "algo.minibatch_answers=4", "algo.log_interval_prompts=8",
             "algo.checkpoint_interval_prompts=16", "algo.eval_interval_prompts=32", "algo.eval_prompts=8",
             "model.from_run={sft}", "reward.from_run={reward_model}"],
    # DPO, counted in pairs: the adapters, AdamW, the pair order and the cache of the reference's
    # log-probabilities (two passes over 64 pairs: the second reads the cache)
    "dpo": ["algo=dpo", "env=arithmetic", "algo.total_pairs=128", "algo.batch_size=8", "algo.dataset_pairs=64",
            "algo.log_interval_pairs=16", "algo.checkpoint_interval_pairs=48", "algo.eval_interval_pairs=64",
            "algo.eval_pairs=16", "algo.eval_prompts=8", "model.from_run={sft}"],
}
# the common settings each case runs with (self-play counts games, language models examples: not agent steps)
BASE = {name: COMMON if name in ("dqn", "ppo", "q_learning", "sac", "td3", "rainbow_pong") else SINKS for name in CASES}


def _args(name, runs):
    """The case's overrides, with the earlier stages' run directories filled in ({sft}, {reward_model})."""
    return [o.format(**{k: str(v) for k, v in runs.items()}) for o in CASES[name]]


def _rows(run_dir):
    """metrics.jsonl without the wall-clock metrics (perf/*: they differ between any two runs)."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith("perf/")} for r in rows]


def _tensors(node, prefix=""):
    if isinstance(node, torch.Tensor):
        yield prefix, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _tensors(value, f"{prefix}.{key}")


def _final_state(run_dir):
    return dict(_tensors(load_checkpoint(run_dir / "checkpoints" / "latest.pt")["trainer"]))


def _train(args, run_dir, cwd, fault=None, timeout=240):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if fault:
        env["RLEXP_FAULT"] = fault
    return subprocess.run([*RLEXP, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def baselines(tmp_path_factory):
    """Uninterrupted runs, trained in this process."""
    threads = torch.get_num_threads()
    out = {}
    try:
        for name in CASES:  # in order: the RL stages start from the sft and reward_model runs
            run_dir = tmp_path_factory.mktemp("baseline") / name
            run(compose_train([*BASE[name], *_args(name, out)]), run_dir)  # the case's values win
            out[name] = run_dir
    finally:
        torch.set_num_threads(threads)
    return out


# where each case's process gets SIGKILLed: every case is killed between checkpoints at a step
# that is no checkpoint's; DQN's resumed run is killed again halfway through writing a
# checkpoint file (its bytes written, not yet renamed)
KILLS = {"dqn": ["step:700", "checkpoint_write:2"], "ppo": ["step:1000"], "q_learning": ["step:1300"],
         "sac": ["step:700"], "td3": ["step:1100"],
         "rainbow_pong": ["step:300"], "alphazero": ["step:100"], "sft": ["step:250"],
         "reward_model": ["step:130"], "rlhf_ppo": ["step:40"], "rloo": ["step:40"],
         "dpo": ["step:100"]}


@pytest.mark.parametrize("name", list(CASES))
def test_killed_and_resumed_equals_uninterrupted(name, baselines, tmp_path):
    run_dir = tmp_path / "run"
    command = ["train", *BASE[name], *_args(name, baselines), f"hydra.run.dir={run_dir}"]
    for fault in KILLS[name]:
        killed = _train(command, run_dir, tmp_path, fault=fault)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        if fault.startswith("checkpoint_write"):
            assert list((run_dir / "checkpoints").glob(".*.tmp"))  # the half-written file is there...
        command = ["resume", str(run_dir)]
    last = _train(command, run_dir, tmp_path)
    assert last.returncode == 0, last.stderr[-2000:]
    assert not list((run_dir / "checkpoints").glob(".*.tmp"))  # ...and was cleaned up
    assert "resumed" in last.stdout and "warning" not in last.stdout + last.stderr
    expected = baselines[name]
    assert _rows(run_dir) == _rows(expected)  # no row duplicated, missing or different
    mine, theirs = _final_state(run_dir), _final_state(expected)
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    mine, theirs = (json.loads((d / "summary.json").read_text()) for d in (run_dir, expected))
    assert mine["unit"] == theirs["unit"] and mine[mine["unit"].split()[-1]] == theirs[theirs["unit"].split()[-1]]
    for records in ("samples.jsonl",):  # files an evaluation writes (language-model RL stages)
        assert (run_dir / records).exists() == (expected / records).exists()
        if (expected / records).exists():
            assert (run_dir / records).read_text() == (expected / records).read_text()


def _wait_for_step(run_dir, step, proc, timeout_s=120.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        metrics = run_dir / "metrics.jsonl"
        if metrics.is_file():
            rows = [json.loads(x) for x in metrics.read_text().splitlines() if x.endswith("}")]
            if rows and rows[-1]["step"] >= step:
                return
        time.sleep(0.05)
    raise AssertionError(f"the run did not reach step {step}")


def test_sigint_and_sigterm_save_a_checkpoint_and_say_how_to_resume(tmp_path):
    run_dir = tmp_path / "run"
    args = [*CASES["dqn"], *COMMON, "total_steps=200000", "logger=wandb", "logger.wandb.mode=offline",
            "logger.progress=none", f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    steps = []
    for sig, command in ((signal.SIGINT, ["train", *args]), (signal.SIGTERM, ["resume", str(run_dir)])):
        proc = subprocess.Popen([*RLEXP, *command], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        _wait_for_step(run_dir, (steps[-1] if steps else 0) + 500, proc)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + sig, err[-2000:]
        assert f"resume with: rlexp resume {run_dir}" in out
        assert f"stopped by {signal.Signals(sig).name} at step" in out and "Traceback" not in err
        entry, state, _ = CheckpointStore(run_dir / "checkpoints").latest()
        last_row = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
        assert state["step"] == entry.step >= last_row["step"] and f"step_{entry.step:010d}.pt" in out
        steps.append(entry.step)
    assert steps[1] > steps[0]
    # both sessions logged to the same W&B run
    ids = {p.name.rsplit("-", 1)[-1] for p in (run_dir / "wandb").glob("offline-run-*")}
    assert len(ids) == 1, ids


def test_a_second_signal_exits_at_once(monkeypatch):
    exits = []
    monkeypatch.setattr(os, "_exit", exits.append)
    before = signal.getsignal(signal.SIGINT)  # Python's default, or SIG_IGN in a job a shell started in the background
    with GracefulStop() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.signum == signal.SIGINT and exits == []
        os.kill(os.getpid(), signal.SIGINT)
        assert exits == [128 + signal.SIGINT]
    assert signal.getsignal(signal.SIGINT) == before  # restored


def test_a_nan_loss_stops_the_run_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from rlexp.algos.dqn import DQN

    train = DQN.train
    calls = {"n": 0}

    def diverging(self, num_updates):
        metrics = train(self, num_updates)
        calls["n"] += 1
        if calls["n"] >= 20:
            metrics["loss/td"] = float("nan")
        return metrics

    monkeypatch.setattr(DQN, "train", diverging)
    cfg = compose_train([*CASES["dqn"], *COMMON])
    threads = torch.get_num_threads()
    try:
        with pytest.raises(TrainingError, match=r"^loss/td is nan at step 608; the run stopped: the last good "
                                                r"checkpoint is .*step_0000000512\.pt"):
            run(cfg, tmp_path / "run")
    finally:
        torch.set_num_threads(threads)
    assert [e.step for e in CheckpointStore(tmp_path / "run" / "checkpoints").entries()] == [256, 512]


def test_an_env_that_raises_is_named_and_the_run_stops_with_a_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    code, _, err = cli(["train", "algo=ppo", "env.id=tests.crashing_env:Crashing-v0", "+env.kwargs.crash_after=300",
                         "env.num_envs=2", *COMMON, f"hydra.run.dir={run_dir}"])
    assert code == 1, err
    (line,) = err.strip().splitlines()
    assert line == (f"error: env 0 raised RuntimeError at step 600: simulated crash after 300 steps; checkpoint saved "
                    f"at step 600 ({run_dir / 'checkpoints' / 'step_0000000600.pt'}); resume with: rlexp resume {run_dir}")
    assert CheckpointStore(run_dir / "checkpoints").latest()[0].step == 600


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_resume_bad_input_is_one_line_and_touches_nothing(baselines, tmp_path):
    import shutil

    finished = tmp_path / "finished"
    shutil.copytree(baselines["q_learning"], finished, symlinks=True)
    other = tmp_path / "other"  # the same run with another gamma
    threads = torch.get_num_threads()
    try:
        run(compose_train([*CASES["q_learning"], *COMMON, "algo.gamma=0.9", "total_steps=512"]), other)
    finally:
        torch.set_num_threads(threads)
    foreign = tmp_path / "foreign"  # an unfinished run whose only checkpoint came from the other run
    shutil.copytree(finished, foreign, symlinks=True)
    (foreign / "summary.json").unlink()
    shutil.rmtree(foreign / "checkpoints")
    shutil.copytree(other / "checkpoints", foreign / "checkpoints", symlinks=True)
    cases = [
        (["resume", str(tmp_path / "nosuch")], f"error: run directory {tmp_path / 'nosuch'} does not exist"),
        (["resume", str(finished / "checkpoints")], f"error: {finished / 'checkpoints'} is not a run directory"),
        (["resume", str(tmp_path)], f"error: {tmp_path} is a sweep directory, not a run"),
        (["resume", str(finished)], f"error: {finished} already finished its 2048 agent steps; to train it longer"),
        (["resume", str(foreign)], f"error: checkpoint {foreign / 'checkpoints' / 'step_0000000512.pt'} was written "
                                   f"by a different config than {foreign / 'config.yaml'} (differs in: algo.gamma)"),
        (["resume", str(finished), "--budget", "0"], "error: --budget must be > 0, got 0"),
        (["train", f"resume={finished}", "algo.lr=0.5"], f"error: resume={finished} continues the run with its own "
                                                         "config.yaml; drop: algo.lr=0.5 (to train it longer: rlexp "
                                                         f"resume {finished} --budget N)"),
        (["train", f"resume={finished}", "total_steps=4096"], f"error: resume={finished} continues the run with its "
                                                              "own config.yaml; drop: total_steps=4096"),
        (["train", f"resume={tmp_path / 'nosuch'}"], f"error: run directory {tmp_path / 'nosuch'} does not exist"),
    ]
    before = {d: _tree(d) for d in (finished, foreign)}
    for args, expect in cases:
        code, _, err = cli(args)
        assert code == 2, (args, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(expect), (args, err)
    assert {d: _tree(d) for d in (finished, foreign)} == before


def test_a_finished_run_trains_longer_with_a_new_budget(baselines, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(baselines["q_learning"], run_dir, symlinks=True)
    threads = torch.get_num_threads()
    try:
        summary = resume(run_dir, budget=2560)
    finally:
        torch.set_num_threads(threads)
    assert summary["steps"] == 2560 and "total_steps: 2560" in (run_dir / "config.yaml").read_text()
    assert [r["step"] for r in _rows(run_dir)][-1] == 2560

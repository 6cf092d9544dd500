"""Sweeps through Hydra's sweepers and launchers, as users run them (subprocesses)."""

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlexp import sweeps
from rlexp.loggers.jsonl import read_metrics
from tests.conftest import RLEXP, run_cli, wandb_run_bytes

pytestmark = pytest.mark.slow  # learning, subprocesses or whole pipelines: left out of make test-fast

REPO = Path(__file__).resolve().parents[1]
QUICK = ["algo=q_learning", "env=maze", "total_steps=3000", "eval_interval_steps=0", "logger.progress=none"]


def _sweep_dir(root: Path) -> Path:
    (sweep,) = (root / "runs" / "multirun").iterdir()
    return sweep


def _statuses(sweep: Path) -> dict[str, str]:
    return {d.name: sweeps.job_summary(d)["status"] for d in sweeps.job_dirs(sweep)}


def test_grid_with_the_basic_sweeper(tmp_path):
    out = run_cli(["train", "-m", *QUICK, "seed=1,2", "algo.alpha=0.5,1.0"], tmp_path)
    assert out.returncode == 0, out.stderr
    sweep = _sweep_dir(tmp_path)
    assert _statuses(sweep) == {"0_seed1": "finished", "1_seed1": "finished", "2_seed2": "finished",
                                "3_seed2": "finished"}
    groups = set()
    for job in sweeps.job_dirs(sweep):
        assert read_metrics(job / "metrics.jsonl")[-1]["step"] == 3000
        data = wandb_run_bytes(job, (f"multirun-{sweep.name}".encode(),))
        groups.add(f"multirun-{sweep.name}".encode() in data)
    assert groups == {True}  # one W&B group for the sweep
    assert "4 of 4 jobs finished" in out.stdout and (sweep / "best.yaml").exists()
    # jobs run one after another in one process leak nothing: job 0 equals the same run alone
    alone = run_cli(["train", *QUICK, "seed=1", "algo.alpha=0.5", "logger=none", "hydra.run.dir=alone"], tmp_path)
    assert alone.returncode == 0, alone.stderr
    strip = lambda events: [{k: v for k, v in e.items() if not k.startswith("perf/")} for e in events]  # noqa: E731
    assert strip(read_metrics(sweep / "0_seed1" / "metrics.jsonl")) == strip(read_metrics(tmp_path / "alone" / "metrics.jsonl"))
    # the table, and the best job again from best.yaml
    table = run_cli(["report", str(sweep)], tmp_path)
    assert table.returncode == 0, table.stderr
    assert "3_seed2" in table.stdout and "q_learning maze algo.alpha=0.5" in table.stdout and "IQM" in table.stdout
    again = run_cli(["train", "--from", str(sweep / "best.yaml"), "logger=none", "hydra.run.dir=again"], tmp_path)
    assert again.returncode == 0, again.stderr
    assert "algo.alpha=" in (tmp_path / "again" / "command.txt").read_text()


def test_joblib_runs_jobs_in_parallel_processes(tmp_path):
    out = run_cli(["train", "-m", "launcher=joblib", "launcher.n_jobs=2", *QUICK, "seed=1,2,3,4", "logger=none"],
                  tmp_path)
    assert out.returncode == 0, out.stderr
    sweep = _sweep_dir(tmp_path)
    assert list(_statuses(sweep).values()) == ["finished"] * 4
    assert "torch_threads: 1" in (sweep / "0_seed1" / "config.yaml").read_text()  # no oversubscription


def test_submitit_local_executor(tmp_path):
    out = run_cli(["train", "-m", "launcher=submitit_local", *QUICK, "seed=1,2", "logger=none"], tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr
    sweep = _sweep_dir(tmp_path)
    assert list(_statuses(sweep).values()) == ["finished"] * 2
    assert (sweep / ".submitit").is_dir()  # submitit's own job logs


OPTUNA = ["-m", "sweep=ppo_cartpole_optuna", "total_steps=256", "seeds_per_job=2", "eval_episodes=2",
          "logger=none", "logger.progress=none", "hydra.sweeper.n_trials=3", "hydra.sweep.dir=study"]


def _trials(tmp_path: Path) -> list[str]:
    with sqlite3.connect(tmp_path / "study" / "optuna.db") as db:
        return [state for (state,) in db.execute("select state from trials order by number")]


def _completed(tmp_path: Path) -> int:
    """Trials the study database holds as complete (0 while it is not there or busy)."""
    if not (tmp_path / "study" / "optuna.db").exists():  # connecting would create it
        return 0
    try:
        return _trials(tmp_path).count("COMPLETE")
    except sqlite3.Error:
        return 0


def test_optuna_search_over_seeds_resumes_after_a_kill(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([*RLEXP, "train", *OPTUNA], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    # the first trial finished: its job record is written, then optuna stores it as complete
    while not ((tmp_path / "study" / "0" / sweeps.JOB_FILE).exists() and _completed(tmp_path)):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "timeout"
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    first = (tmp_path / "study" / "0" / sweeps.JOB_FILE).read_text()
    done_before = _trials(tmp_path).count("COMPLETE")
    assert 1 <= done_before < 3

    out = run_cli(["train", *OPTUNA], tmp_path, timeout=600)  # the same command resumes the study
    assert out.returncode == 0, out.stderr
    states = _trials(tmp_path)
    assert states.count("COMPLETE") == 3  # 3 in all: finished trials were not repeated
    assert (tmp_path / "study" / "0" / sweeps.JOB_FILE).read_text() == first  # nor their directories reused
    record = sweeps.job_summary(tmp_path / "study" / "0")
    assert record["seeds"] == [1, 2] and len(record["eval_returns"]) == 2  # objective: the mean over 2 seeds
    assert record["objective"] == pytest.approx(sum(record["eval_returns"]) / 2)
    assert all((tmp_path / "study" / "0" / f"seed{s}" / "metrics.jsonl").exists() for s in (1, 2))
    best = (tmp_path / "study" / "best.yaml").read_text()
    assert "algo.lr=" in best and (tmp_path / "study" / "optimization_results.yaml").exists()


def test_a_failing_job_does_not_stop_the_sweep(tmp_path):
    env_id = "env.id=tests.crashing_env:Crashing-v0"
    args = ["train", "-m", env_id, "+env.kwargs.crash_after=0,300", "total_steps=1500", "eval_interval_steps=0",
            "algo.learning_starts_steps=500", "logger=none", "logger.progress=none"]
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run([*RLEXP, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stderr
    sweep = _sweep_dir(tmp_path)
    assert _statuses(sweep) == {"0_seed1": "finished", "1_seed1": "failed"}
    assert "1 of 2 jobs finished" in out.stderr
    log_path = sweep.relative_to(tmp_path) / "1_seed1" / "job.log"
    assert "FAILED 1_seed1: env 0 raised RuntimeError at step 300: simulated crash after 300 steps; checkpoint saved " \
           "at step 300" in out.stderr and f"(log: {log_path})" in out.stderr
    log = (sweep / "1_seed1" / "job.log").read_text()
    assert "Traceback" in log and "simulated crash" in log


def test_missing_plugin_names_the_extra():
    from hydra.errors import MissingConfigException

    from rlexp.hydra_front import format_error

    err = MissingConfigException("Could not load 'hydra/launcher/ray'", missing_cfg_file="hydra/launcher/ray",
                                 options=["basic", "joblib"])
    assert format_error(err) == ("launcher ray needs a Hydra plugin that is not installed: pip install 'rlexp[ray]' "
                                 "(or pip install hydra-ray-launcher)")
    for sweeper in ("optuna", "rlexp_optuna"):
        err = MissingConfigException("x", missing_cfg_file=f"hydra/sweeper/{sweeper}", options=["basic"])
        assert "pip install 'rlexp[optuna]'" in format_error(err)


def _can_unshare() -> str | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare and ip (util-linux, iproute2) for a private network namespace"
    probe = subprocess.run(["unshare", "-rn", "ip", "link", "set", "lo", "up"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create a private network namespace here: {probe.stderr.strip()[:100]}"
    return None


@pytest.mark.skipif(_can_unshare() is not None, reason=str(_can_unshare()))
def test_ray_cluster_in_a_private_network_namespace(tmp_path):
    # Ray listens on every interface: run the head and the sweep where only loopback exists
    bin_dir = Path(sys.executable).parent
    script = f"""
set -e
ip link set lo up
export RAY_USAGE_STATS_ENABLED=0 PATH={bin_dir}:$PATH
ray start --head --node-ip-address=127.0.0.1 --port=6379 --ray-client-server-port=10001 --num-cpus=2 \\
    --include-dashboard=false --disable-usage-stats > ray_start.log 2>&1
set +e
# Ray's client proxy sometimes fails to fork the per-client server on a loaded machine
# ("Starting Ray client server failed", an empty log): a Ray flake, not rlexp's, so retry it
for attempt in 1 2 3; do
    rm -rf ray_sweep
    {sys.executable} -m rlexp train -m launcher=ray launcher.address=ray://127.0.0.1:10001 {' '.join(QUICK)} \\
        seed=1,2,3,4 logger=none hydra.sweep.dir=ray_sweep 2> sweep.err
    rc=$?
    cat sweep.err >&2
    if [ $rc -eq 0 ] || ! grep -q "Starting Ray client server failed" sweep.err; then break; fi
    echo "retrying after Ray's client server failed to start (attempt $attempt)" >&2
done
ray stop --force > /dev/null 2>&1
exit $rc
"""
    out = subprocess.run(["unshare", "-rn", "bash", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:] + (tmp_path / "ray_start.log").read_text()[-2000:]
    sweep = tmp_path / "ray_sweep"
    assert list(_statuses(sweep).values()) == ["finished"] * 4
    assert all(read_metrics(d / "metrics.jsonl")[-1]["step"] == 3000 for d in sweeps.job_dirs(sweep))

"""The reproduction records in results/: each one is a run `rlexp report` reads, and the README
quotes its final evaluation, so a reader can recompute every reported score from a clone."""

import subprocess
from pathlib import Path

import pytest

from rlexp.reporting.collect import read_run

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results"
RECORDS = sorted(p.parent for p in RESULTS.rglob("config.yaml"))
KEPT = {"config.yaml", "overrides.yaml", "command.txt", "metrics.jsonl", "summary.json", "evals.jsonl"}


def test_results_hold_records():
    assert RECORDS, "results/ holds no run record"


@pytest.mark.parametrize("record", RECORDS, ids=lambda p: str(p.relative_to(RESULTS)))
def test_record_is_a_finished_run_the_readme_quotes(record):
    assert {p.name for p in record.iterdir()} <= KEPT  # no checkpoints or W&B files in the repository
    run = read_run(record)
    assert run is not None and run.finished and run.evals, run and run.problems
    assert not run.problems, run.problems
    readme = (ROOT / "README.md").read_text()
    assert f"{run.final_score():.1f}" in readme, f"README does not quote {record.name}'s final score"


def test_keep_run_copies_the_record_and_refuses_bad_input(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "command.txt"):
        (run / name).write_text(f"{name}\n")
    (run / "checkpoints" / "latest.pt").write_text("weights")
    script = str(ROOT / "scripts" / "keep_run.sh")

    kept = subprocess.run([script, str(run), str(tmp_path / "kept")], capture_output=True, text=True)
    assert kept.returncode == 0, kept.stderr
    assert {p.name for p in (tmp_path / "kept").iterdir()} == {"config.yaml", "metrics.jsonl", "summary.json",
                                                               "command.txt"}
    again = subprocess.run([script, str(run), str(tmp_path / "kept")], capture_output=True, text=True)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "already exists" in again.stderr
    not_run = subprocess.run([script, str(tmp_path / "kept" / "nothing"), str(tmp_path / "other")],
                             capture_output=True, text=True)
    assert not_run.returncode == 2 and "not a run directory" in not_run.stderr
    assert not (tmp_path / "other").exists()

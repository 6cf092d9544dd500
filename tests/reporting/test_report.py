import numpy as np
import pytest
from PIL import Image

from rlexp.config import ConfigError
from rlexp.reporting import report
from rlexp.reporting.stats import iqm
from tests.conftest import run_cli, wandb_run_bytes
from tests.reporting.test_collect import write_run


def _runs(tmp_path):
    for seed, scale in zip((1, 2, 3, 4), (1.0, 2.0, 3.0, 10.0)):
        write_run(tmp_path / "fast" / f"s{seed}", seed, 1e-3, [(1000, 10 * scale), (2000, 20 * scale)])
        write_run(tmp_path / "slow" / f"s{seed}", seed, 3e-4, [(1000, scale), (2000, 2 * scale)])


def test_group_statistics_and_the_curve_data(tmp_path):
    _runs(tmp_path)
    result = report.build([tmp_path])
    best, other = result["summaries"]
    assert best.name == "ppo CartPole-v1 algo.lr=0.001" and len(best.runs) == 4
    assert best.iqm.value == pytest.approx(iqm(np.array([20.0, 40, 60, 200])))
    assert best.mean.value == pytest.approx(80.0) and best.median.value == pytest.approx(50.0)
    steps, value, low, high = report.curve_data(best.runs)
    assert steps.tolist() == [1000, 2000] and value.tolist() == pytest.approx([40.0, 80.0])
    assert (low <= value).all() and (value <= high).all()
    fig = report.draw_curves(result["summaries"], "mean", None)
    line = fig.axes[0].get_lines()[0]
    assert line.get_xdata().tolist() == [1000, 2000] and line.get_ydata().tolist() == pytest.approx([40.0, 80.0])
    assert len(fig.axes[0].collections) == 2  # one CI band per group


def test_vs_gives_the_probability_of_improvement(tmp_path):
    _runs(tmp_path)
    result = report.build([tmp_path / "fast"], vs=[tmp_path / "slow"])
    # fast: 20, 40, 60, 200 against slow: 2, 4, 6, 20 -> 15 wins and 1 tie of 16
    assert result["comparison"].value == pytest.approx(15.5 / 16)


def test_empty_folder_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no run directories"):
        report.build([tmp_path])
    out = run_cli(["report", str(tmp_path)], tmp_path)
    assert out.returncode == 2 and out.stderr.strip().startswith("error: no run directories")


def test_cli_writes_report_files(tmp_path):
    _runs(tmp_path)
    write_run(tmp_path / "fast" / "killed", 9, 1e-3, [(1000, 5.0)], finished=False, half_line=True)
    out = run_cli(["report", str(tmp_path), "--by", "algo.lr", "--out", "rep"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "algo.lr=0.001" in out.stdout and "IQM" in out.stdout and "half-written" in out.stdout
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| algo.lr=0.001 | 5 |" in md and "Skipped or partial runs" in md
    assert (tmp_path / "rep" / "scores.csv").read_text().count("\n") == 1 + 9
    assert Image.open(tmp_path / "rep" / "curves.png").size == (800, 500)


def _atari_run(path, seed, score, total_steps, protocol="nature"):
    import json

    import yaml

    path.mkdir(parents=True)
    config = {"algo": {"name": "dqn"}, "env": {"type": "atari", "game": "pong", "id": "ALE/Pong-v5",
                                                "protocol": protocol, "frame_skip": 4},
              "seed": seed, "total_steps": total_steps}
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    (path / "metrics.jsonl").write_text(json.dumps({"step": total_steps, "eval/episode_return": score}) + "\n")
    (path / "summary.json").write_text("{}")


def test_atari_reports_human_normalized_scores_and_states_a_budget_mismatch(tmp_path):
    from rlexp.references import human_normalized, load

    assert human_normalized("pong", 14.6) == pytest.approx(1.0) and human_normalized("pong", -20.7) == 0.0
    assert load("atari_baselines")["convention"] == "human_30min"
    for seed, score in ((1, 10.0), (2, 12.0), (3, 14.0)):
        _atari_run(tmp_path / "short" / f"s{seed}", seed, score, total_steps=500_000)
        _atari_run(tmp_path / "full" / f"s{seed}", seed, score, total_steps=12_500_000)
    short, cleanrl = report.build([tmp_path / "short"])["references"]
    assert short["paper"] == "18.9 +/- 1.3" and not short["comparable"] and "Mnih et al. 2015" in short["source"]
    assert "budget differs: ours 2,000,000 frames, published 50,000,000" in short["notes"]
    assert short["human_normalized_iqm"].startswith(f"{human_normalized('pong', 12.0):.2f}")
    assert cleanrl["paper"] == "17.8 +/- 1.83" and "CleanRL" in cleanrl["source"]
    full, _ = report.build([tmp_path / "full"])["references"]
    assert full["comparable"] and full["notes"] == ""


def test_cartpole_rows_cite_rl_zoo(tmp_path):
    _runs(tmp_path)  # ppo on CartPole-v1, no total_steps in the config
    rows = report.build([tmp_path])["references"]
    assert {r["source"] for r in rows} == {"rl-baselines3-zoo benchmark.md (CartPole-v1)"}
    assert all(not r["comparable"] for r in rows)  # the budget is not known to match


def test_report_to_wandb_offline(tmp_path):
    _runs(tmp_path)
    out = run_cli(["report", str(tmp_path / "fast"), "--out", "rep", "--wandb", "offline"], tmp_path)
    assert out.returncode == 0, out.stderr
    # W&B's service process writes the offline log asynchronously (and may be one shared
    # with this test process): wait for it instead of racing it
    data = wandb_run_bytes(tmp_path / "rep", (b"report/curves", b"report/groups"))
    assert b"report/curves" in data and b"report/groups" in data
    bad = run_cli(["report", str(tmp_path / "fast"), "--wandb", "offline"], tmp_path)
    assert bad.returncode == 2 and "needs --out" in bad.stderr


def test_cli_vs_takes_several_paths_on_each_side(tmp_path):
    _runs(tmp_path)
    a = [str(tmp_path / "fast" / f"s{k}") for k in (1, 2, 3, 4)]
    out = run_cli(["report", *a, "--vs", str(tmp_path / "slow")], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "probability of improvement P(A > B): 0.97" in out.stdout
    bad = run_cli(["report", str(tmp_path), "--vs"], tmp_path)
    assert bad.returncode == 2 and "--vs needs runs on both sides" in bad.stderr

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


@pytest.mark.slow
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


def _atari_run(path, seed, score, total_steps, protocol="nature", game="pong", algo="dqn", evals=None):
    import json

    import yaml

    path.mkdir(parents=True)
    config = {"algo": {"name": algo}, "env": {"type": "atari", "game": game, "id": f"ALE/{game}-v5",
                                               "protocol": protocol, "frame_skip": 4},
              "seed": seed, "total_steps": total_steps}
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    evals = evals or [(total_steps, score)]
    (path / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "eval/episode_return": r}) + "\n" for s, r in evals))
    (path / "summary.json").write_text("{}")


def test_the_curve_figure_draws_a_published_curve_within_the_steps_run(tmp_path):
    """CleanRL's ppo_atari Pong curve (frames in the reference, agent steps on the axis): the
    point at 13M frames is drawn beside a 4M-step run, its 40M-frame final score is not."""
    _atari_run(tmp_path / "ppo", 1, 18.5, total_steps=10_000_000, algo="ppo",
               evals=[(1_000_000, -20.0), (3_000_000, 10.0), (4_000_000, 18.5)])
    result = report.build([tmp_path])
    label, steps, values = report.published_curves(result["summaries"])[0]
    assert label.startswith("published: CleanRL") and steps == [3_250_000] and values == [18.0]
    fig = report.draw_curves(result["summaries"], "mean", 4)
    assert [line.get_xdata().tolist() for line in fig.axes[0].get_lines()] == [[1_000_000, 3_000_000, 4_000_000],
                                                                              [3_250_000]]
    # the run was stopped at 4M of its 10M steps: compared at the 16M frames it used, not marked comparable
    (tmp_path / "ppo" / "summary.json").unlink()
    row = next(r for r in report.build([tmp_path])["references"] if r["source"].startswith("CleanRL"))
    assert not row["comparable"] and "budget differs: ours 16,000,000 frames, published 40,000,000" in row["notes"]
    _atari_run(tmp_path / "dqn", 1, 5.0, total_steps=10_000_000, evals=[(4_000_000, 5.0)])  # no published curve
    assert len(report.published_curves(report.build([tmp_path / "dqn"])["summaries"])) == 0


def test_atari_reports_human_normalized_scores_and_states_a_budget_mismatch(tmp_path):
    from rlexp.references import human_normalized, load

    assert human_normalized("pong", 14.6) == pytest.approx(1.0) and human_normalized("pong", -20.7) == 0.0
    assert load("atari_baselines")["convention"] == "human_30min"
    for seed, score in ((1, 10.0), (2, 12.0), (3, 14.0)):
        _atari_run(tmp_path / "short" / f"s{seed}", seed, score, total_steps=500_000)
        _atari_run(tmp_path / "full" / f"s{seed}", seed, score, total_steps=12_500_000)
        _atari_run(tmp_path / "sticky" / f"s{seed}", seed, score, total_steps=10_000_000, protocol="machado2018")
    rows = {r["source"]: r for r in report.build([tmp_path / "short"])["references"]}
    assert set(rows) == {"Mnih et al. 2015 (Nature), Extended Data Table 2",
                         "CleanRL docs (dqn_atari.py, ppo_atari.py benchmark tables)", "rl-baselines3-zoo benchmark.md"}
    mnih = rows["Mnih et al. 2015 (Nature), Extended Data Table 2"]
    assert mnih["paper"] == "18.9 +/- 1.3" and not mnih["comparable"]
    assert mnih["notes"] == "budget differs: ours 2,000,000 frames, published 50,000,000"
    assert mnih["human_normalized_iqm"].startswith(f"{human_normalized('pong', 12.0):.2f}")
    assert rows["rl-baselines3-zoo benchmark.md"]["paper"] == "20.602 +/- 0.613"
    full = {r["source"]: r for r in report.build([tmp_path / "full"])["references"]}
    assert full["Mnih et al. 2015 (Nature), Extended Data Table 2"]["comparable"]
    assert not full["rl-baselines3-zoo benchmark.md"]["comparable"]  # 40M frames there
    sticky = {r["source"]: r for r in report.build([tmp_path / "sticky"])["references"]}
    cleanrl = sticky["CleanRL docs (dqn_atari.py, ppo_atari.py benchmark tables)"]
    assert cleanrl["notes"] == "protocol differs: ours machado2018, published nature" and not cleanrl["comparable"]
    md = report.markdown(report.build([tmp_path / "short"]))
    assert "episodic returns of the training episodes" in md  # each source's evaluation is stated


def test_atari_100k_runs_meet_the_published_der_scores_and_aggregate(tmp_path):
    for game, score in (("boxing", 3.0), ("pong", -19.0)):
        for seed in (1, 2):
            _atari_run(tmp_path / game / f"s{seed}", seed, score + seed, total_steps=100_000, game=game, algo="rainbow")
    result = report.build([tmp_path])
    rows = [r for r in result["references"] if r["source"].startswith("van Hasselt")]
    assert sorted(r["paper"] for r in rows) == ["-19.3", "0.2"]  # no spread is published: none is printed
    assert all(r["comparable"] for r in rows)  # 100k agent steps = the published 400k frames
    md = report.markdown(result)
    assert "Published human-normalized IQM beside" in md and "DER 0.18, DrQ(eps) 0.28, SPR 0.34" in md
    assert "ours covers 2 of its 26 games: not the same aggregate" in md
    longer = tmp_path / "longer"
    _atari_run(longer / "s1", 1, 5.0, total_steps=50_000_000, game="boxing", algo="rainbow")
    _atari_run(longer / "s2", 2, -10.0, total_steps=50_000_000, game="pong", algo="rainbow")
    assert "DER 0.18" not in report.markdown(report.build([longer]))  # the 100k aggregate only beside 100k runs


def test_atari_aggregate_over_games_is_stratified_by_game(tmp_path):
    from rlexp.references import human_normalized
    from rlexp.reporting.stats import aggregate, aggregate_improvement

    scores = {("dqn", "pong"): [10.0, 12.0, 14.0], ("dqn", "breakout"): [30.0, 60.0],
              ("ppo", "pong"): [18.0, 19.0, 20.0], ("ppo", "breakout"): [100.0, 200.0]}
    for (algo, game), values in scores.items():
        for seed, score in enumerate(values):
            _atari_run(tmp_path / algo / game / f"s{seed}", seed, score, total_steps=1000, game=game, algo=algo)
    normalized = {k: [human_normalized(k[1], x) for x in v] for k, v in scores.items()}
    result = report.build([tmp_path])
    assert [a["method"] for a in result["aggregates"]] == ["ppo", "dqn"]
    ppo = result["aggregates"][0]
    assert ppo["games"] == ["breakout", "pong"] and ppo["runs"] == 5
    expected = aggregate([normalized[("ppo", "breakout")], normalized[("ppo", "pong")]], "iqm")
    assert (ppo["iqm"].value, ppo["iqm"].low, ppo["iqm"].high) == pytest.approx(
        (expected.value, expected.low, expected.high))
    assert ppo["iqm"].value == pytest.approx(iqm(np.array(normalized[("ppo", "breakout")] + normalized[("ppo", "pong")])))
    vs = report.build([tmp_path / "ppo"], vs=[tmp_path / "dqn"])
    games, estimate_ = vs["aggregate_comparison"]
    assert games == ["breakout", "pong"]
    expected = aggregate_improvement([normalized[("ppo", g)] for g in games], [normalized[("dqn", g)] for g in games])
    assert estimate_.value == pytest.approx(1.0) and estimate_.value == pytest.approx(expected.value)
    md = report.markdown(result)
    assert "Aggregate over Atari games" in md and "| ppo | breakout, pong | 5 |" in md
    assert "stratified bootstrap" in report.markdown(vs) and "over 2 games" in report.markdown(vs)


def test_cartpole_rows_cite_rl_zoo(tmp_path):
    _runs(tmp_path)  # ppo on CartPole-v1, no total_steps in the config
    rows = report.build([tmp_path])["references"]
    assert {r["source"] for r in rows} == {"rl-baselines3-zoo benchmark.md", "CleanRL docs (dqn.py, ppo.py benchmark tables)"}
    assert all(not r["comparable"] for r in rows)  # the budget is not known to match


@pytest.mark.slow
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


@pytest.mark.slow
def test_cli_vs_takes_several_paths_on_each_side(tmp_path):
    _runs(tmp_path)
    a = [str(tmp_path / "fast" / f"s{k}") for k in (1, 2, 3, 4)]
    out = run_cli(["report", *a, "--vs", str(tmp_path / "slow")], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "probability of improvement P(A > B): 0.97" in out.stdout
    bad = run_cli(["report", str(tmp_path), "--vs"], tmp_path)
    assert bad.returncode == 2 and "--vs needs runs on both sides" in bad.stderr


def test_aggregate_curves_are_human_normalized_iqm_per_step(tmp_path):
    from rlexp.references import human_normalized
    from rlexp.reporting.stats import aggregate

    runs = {("pong", 1): [(500, -20.0), (1000, 0.0)], ("pong", 2): [(500, -18.0), (1000, 5.0)],
            ("breakout", 1): [(500, 2.0), (1000, 30.0)], ("breakout", 2): [(500, 5.0), (1000, 20.0)]}
    for (game, seed), evals in runs.items():
        _atari_run(tmp_path / game / f"s{seed}", seed, None, 1000, game=game, evals=evals)
    result = report.build([tmp_path])
    (row,) = result["aggregates"]
    steps, value, low, high = report.aggregate_curve_data(row["run_data"])
    assert steps.tolist() == [500, 1000]
    for i, step in enumerate((500, 1000)):
        samples = [[human_normalized(g, dict(runs[(g, s)])[step]) for s in (1, 2)] for g in ("breakout", "pong")]
        expected = aggregate(samples, "iqm")
        assert (value[i], low[i], high[i]) == pytest.approx((expected.value, expected.low, expected.high))
    fig = report.draw_aggregate_curves(result["aggregates"], 4)
    assert fig.axes[0].get_lines()[0].get_ydata().tolist() == pytest.approx(value.tolist())
    written = report.write(result, tmp_path / "out")
    assert tmp_path / "out" / "aggregate_curves.png" in written and (tmp_path / "out" / "aggregate_curves.png").stat().st_size

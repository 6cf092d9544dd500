import json

import yaml

from rlexp.reporting.collect import collect, group_runs


def write_run(path, seed, lr, evals, finished=True, half_line=False):
    path.mkdir(parents=True)
    config = {"algo": {"name": "ppo", "lr": lr}, "env": {"id": "CartPole-v1"}, "seed": seed,
              "logger": {"wandb": {"mode": "offline"}}, "device": {"type": "cpu"}}
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    lines = [json.dumps({"step": s, "eval/episode_return": r}) for s, r in evals]
    text = "\n".join(lines) + "\n"
    if half_line:
        text += '{"step": 999, "eval/episode_re'
    (path / "metrics.jsonl").write_text(text)
    if finished:
        (path / "summary.json").write_text("{}")


def test_groups_ignore_the_seed_and_are_named_by_what_differs(tmp_path):
    for seed in (1, 2, 3):
        write_run(tmp_path / f"a{seed}", seed, 1e-3, [(1000, 10.0 * seed), (2000, 100.0 * seed)])
        write_run(tmp_path / f"b{seed}", seed, 3e-4, [(1000, 1.0), (2000, 2.0)])
    groups = group_runs(collect([tmp_path]))
    assert sorted(groups) == ["ppo CartPole-v1 algo.lr=0.0003", "ppo CartPole-v1 algo.lr=0.001"]
    fast = groups["ppo CartPole-v1 algo.lr=0.001"]
    assert [r.final_score() for r in fast] == [100.0, 200.0, 300.0]
    assert [r.final_score(last_evals=2) for r in fast] == [55.0, 110.0, 165.0]
    by = group_runs(collect([tmp_path]), by=["env.id"])
    assert list(by) == ["env.id=CartPole-v1"] and len(by["env.id=CartPole-v1"]) == 6


def test_crashed_and_partial_runs_are_reported_not_fatal(tmp_path):
    write_run(tmp_path / "ok", 1, 1e-3, [(1000, 5.0)])
    write_run(tmp_path / "killed", 2, 1e-3, [(1000, 7.0)], finished=False, half_line=True)
    (tmp_path / "empty_dir").mkdir()
    runs = {r.path.name: r for r in collect([tmp_path])}
    assert set(runs) == {"ok", "killed"}
    killed = runs["killed"]
    assert killed.final_score() == 7.0 and not killed.finished
    assert any("half-written" in p for p in killed.problems) and any("did not finish" in p for p in killed.problems)
    assert runs["ok"].problems == []


def test_a_run_directory_itself_and_nothing(tmp_path):
    write_run(tmp_path / "one", 1, 1e-3, [(1000, 5.0)])
    assert [r.path.name for r in collect([tmp_path / "one"])] == ["one"]
    assert collect([tmp_path / "nothing_here"]) == []

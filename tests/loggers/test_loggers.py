import json
import os
from pathlib import Path

from rich.console import Console

from rlexp.loggers import ConsoleLogger, JsonlLogger
from rlexp.loggers.jsonl import read_metrics
from tests.conftest import wandb_run_bytes


def test_jsonl_one_object_per_event(tmp_path):
    log = JsonlLogger(tmp_path / "metrics.jsonl")
    log.log(10, {"train/episode_return": 5.0, "loss/td": float("nan")})
    log.log(20, {"eval/episode_return": 9})
    log.close()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == [
        {"step": 10, "train/episode_return": 5.0, "loss/td": None},
        {"step": 20, "eval/episode_return": 9.0},
    ]


def test_read_metrics_skips_a_half_written_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "a": 1.0}\n{"step": 2, "a"')
    assert read_metrics(path) == [{"step": 1, "a": 1.0}]


def test_console_lines_when_not_a_terminal(capsys):
    console = ConsoleLogger("auto", 100, "dqn test", console=Console(force_terminal=False))
    assert console.mode == "lines"
    console.log(50, {"perf/sps": 1234.0, "train/episode_return": 20.5, "train/epsilon": 0.5})
    console.log(50, {"eval/episode_return": 30.0, "eval/episode_return_std": 1.0})
    console.close()
    out = capsys.readouterr().out
    assert "step        50/100  sps 1234  return 20.5  eps 0.500" in out
    assert "eval return 30.0 +/- 1.0" in out


def test_console_bar_on_a_terminal():
    import io

    buffer = io.StringIO()
    console = ConsoleLogger("auto", 100, "dqn test", console=Console(file=buffer, force_terminal=True, width=120))
    assert console.mode == "bar"
    console.log(100, {"perf/sps": 999.0, "train/episode_return": 12.0, "train/epsilon": 0.1})
    console.close()
    text = buffer.getvalue()
    assert "dqn test" in text and "100/100" in text and "sps 999" in text and "eps 0.100" in text


def test_wandb_offline_stays_in_the_run_dir(tmp_path):
    from rlexp.config import WandbConfig
    from rlexp.loggers import WandbLogger

    log = WandbLogger(WandbConfig(mode="offline", tags=["t1"]), tmp_path, {"algo": {"lr": 0.1}}, group="g1")
    log.log(5, {"train/episode_return": 1.5})
    log.close()
    needles = (b"g1", b"train/episode_return", b"t1", b"lr")
    data = wandb_run_bytes(tmp_path, needles)
    for needle in needles:
        assert needle in data, (needle, len(data))
    home = Path(os.environ["HOME"])  # the isolated home of conftest
    assert not (home / ".cache" / "wandb").exists() and not (home / ".config" / "wandb").exists()

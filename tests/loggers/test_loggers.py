import json
import os
from pathlib import Path

import pytest
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
    console.log_evaluation(50, 30.0, "eval return 30.0 +/- 1.0 over 10 episodes")
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


@pytest.mark.slow
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


def _stderr_warnings(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]


def test_wandb_online_without_a_key_falls_back_to_offline(tmp_path, monkeypatch, capsys):
    # The real no-key online init (not a mock): wandb raises UsageError at once, without
    # network, because pytest's stdin is no terminal and the isolated HOME has no netrc.
    from rlexp.config import WandbConfig
    from rlexp.loggers import WandbLogger

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    log = WandbLogger(WandbConfig(mode="online"), tmp_path, {"algo": {"lr": 0.1}}, group="g1")
    log.log(5, {"train/episode_return": 1.5})
    log.log(6, {"train/episode_return": 2.5})
    log.close()
    warnings = _stderr_warnings(capsys)
    assert len(warnings) == 1, warnings
    assert "W&B online failed" in warnings[0] and "offline" in warnings[0] and "wandb sync" in warnings[0]
    assert log.run_id is not None
    data = wandb_run_bytes(tmp_path, (b"train/episode_return", b"g1"))
    assert b"train/episode_return" in data
    home = Path(os.environ["HOME"])  # the offline fallback also keeps W&B's files in the run dir
    assert not (home / ".cache" / "wandb").exists() and not (home / ".config" / "wandb").exists()


def test_wandb_disk_full_warns_once_and_never_raises(tmp_path, monkeypatch, capsys):
    from rlexp.config import WandbConfig
    from rlexp.loggers import WandbLogger

    log = WandbLogger(WandbConfig(mode="offline"), tmp_path, {}, group=None)
    calls = []

    def full_disk(*args, **kwargs):
        calls.append(args)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(log.run, "log", full_disk)  # what W&B raises when its directory's disk is full
    for step in range(3):
        log.log(step, {"a": 1.0})
    log.log_image(3, "figures/x", tmp_path / "missing.png")
    log.log_video(4, "eval/video", tmp_path / "missing.mp4")
    log.close()
    assert len(calls) == 1  # later calls are no-ops
    warnings = _stderr_warnings(capsys)
    assert len(warnings) == 1, warnings
    assert "No space left on device" in warnings[0] and "metrics.jsonl" in warnings[0]


def test_wandb_no_op_when_online_and_offline_init_fail(tmp_path, monkeypatch, capsys):
    import wandb

    from rlexp.config import WandbConfig
    from rlexp.loggers import WandbLogger

    modes = []

    def broken_init(*args, mode: str, **kwargs):
        modes.append(mode)
        raise wandb.errors.CommError(f"{mode} is broken")

    monkeypatch.setattr(wandb, "init", broken_init)
    log = WandbLogger(WandbConfig(mode="online"), tmp_path, {}, group=None)
    assert modes == ["online", "offline"]
    assert log.run is None and log.run_id is None
    log.log(1, {"a": 1.0})
    log.log_image(1, "figures/x", tmp_path / "x.png")
    log.log_video(1, "eval/video", tmp_path / "x.mp4")
    log.close()
    warnings = _stderr_warnings(capsys)
    assert len(warnings) == 1, warnings
    assert "online is broken" in warnings[0] and "offline is broken" in warnings[0] and "off" in warnings[0]


def test_wandb_run_id_continues_the_same_run(tmp_path):
    from rlexp.config import WandbConfig
    from rlexp.loggers import WandbLogger

    # A resumed training run passes the saved id again; W&B then continues that run.
    ids = []
    for step in (1, 2):
        log = WandbLogger(WandbConfig(mode="offline"), tmp_path, {}, group=None, run_id="rlexp-resume-1")
        log.log(step, {"a": float(step)})
        log.close()
        ids.append(log.run_id)
    assert ids == ["rlexp-resume-1", "rlexp-resume-1"]


@pytest.mark.parametrize("width", [80, 100, 120, 200])
@pytest.mark.parametrize("description", ["dqn CartPole-v1 seed=1", "alphazero breakthrough(rows=6,columns=6) seed=12345"])
def test_the_progress_bar_keeps_the_bar_the_count_and_the_time_left_at_any_width(width, description):
    """From 80 columns up the bar, the work done of the total and the times stay whole; the
    description and then the metrics give way."""
    import io

    from rich.console import Console

    from rlexp.loggers.console import ConsoleLogger

    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=True, color_system=None)
    logger = ConsoleLogger("bar", 200_000, description, console=console)
    logger._progress.stop()  # no live refresh: draw one frame below
    logger.log(60_000, {"perf/sps": 2145.0, "train/episode_return": 187.3, "eval/score": 500.0,
                        "train/epsilon": 0.05, "loss/td": 0.0123, "loss/policy": 0.1, "loss/value": 1.2})
    buf.truncate(0)
    buf.seek(0)
    console.print(logger._progress.get_renderable())
    line = buf.getvalue().strip().splitlines()[-1]
    assert len(line) <= width and "60000/200000" in line and "━" in line, line
    assert line.count(":") >= 4 and "sps 2145" in line, line  # elapsed and remaining (h:mm:ss each), then metrics

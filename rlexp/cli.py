"""The ``rlexp`` command: a thin Typer dispatcher in front of Hydra's own entry point.

``rlexp train ARGS`` hands ARGS to the ``@hydra.main`` function unchanged, so Hydra's
override grammar, ``-m/--multirun``, ``--cfg``, sweeper and launcher plugins all work as
Hydra users expect. rlexp only adds one-line error messages for bad input.
"""

from __future__ import annotations

import errno
import os
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import typer

from rlexp.errors import check_writable_dir, first_line

GRAMMAR = """\
Overrides (Hydra grammar), after `rlexp train`:
  group=option          pick a config group option        algo=dqn env=cartpole device=cpu
  key=value             set a field                       seed=3 total_steps=20000
  group.key=value       set a field inside a group        algo.lr=5e-4 env.num_envs=4
  +key=value            add a key the schema lacks        +hydra.job.env_set.FOO=1
  ~key                  delete a key
  -m a=1,2 b=x,y        multirun: one job per combination (a sweep directory, one run dir per job)
  --cfg job             print the composed config and run nothing (--cfg hydra / all)
  hydra.run.dir=PATH    where a single run writes (default runs/<algo>/<env>/<time>_seed<seed>)
  hydra.sweep.dir=PATH  where a multirun writes (default runs/multirun/<time>)
  --from SWEEP/best.yaml  start from a sweep's best overrides (later overrides still win)
  resume=RUN_DIR        continue a killed or stopped run in place (as `rlexp resume RUN_DIR`)
  --info, --hydra-help  Hydra's own diagnostics and help"""


def config_groups() -> dict[str, list[tuple[str, str]]]:
    """``{group: [(option, one-line description), ...]}`` read from the packaged configs."""
    root = resources.files("rlexp.conf")
    groups: dict[str, list[tuple[str, str]]] = {}
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if not entry.is_dir() or entry.name.startswith(("_", ".")):
            continue
        options = []
        for f in sorted(entry.iterdir(), key=lambda e: e.name):
            if f.name.endswith(".yaml"):
                # the first comment line that is not a Hydra directive (# @package ...)
                comments = [ln.lstrip("# ").strip() for ln in f.read_text().splitlines() if ln.startswith("#")]
                doc = next((c for c in comments if not c.startswith("@")), "")
                options.append((f.name[: -len(".yaml")], doc))
        if options:
            groups[entry.name] = options
    return groups


def groups_text() -> str:
    lines = ["Config groups (group=option):"]
    for group, options in config_groups().items():
        lines.append(f"  {group:<9} {', '.join(name for name, _ in options)}")
    lines.append("Run `rlexp list` for what each option is, `rlexp train --cfg job` for every field.")
    return "\n".join(lines)


def _epilog() -> str:
    # "\b" stops click from rewrapping a paragraph
    return "\n\n".join("\b\n" + block for block in (GRAMMAR, groups_text()))


app = typer.Typer(
    name="rlexp",
    help="Config-driven reinforcement-learning experiments (Hydra configs, PyTorch trainers, W&B logging).",
    epilog=_epilog(),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


# --------------------------------------------------------------------------- errors


def format_error(err: BaseException) -> str:
    """One line naming the problem and, where known, the valid choices."""
    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf.errors import MissingMandatoryValue

    from rlexp.errors import ConfigError, omegaconf_error_line

    cause = err.__cause__
    if isinstance(err, ConfigError):
        return str(err)
    if isinstance(err, MissingConfigException):
        return _missing_config_line(err)
    if "Ambiguous value for argument" in str(err) or "requires --multirun" in str(err):
        arg = re.search(r"'(.+?)'", str(err))
        arg = arg.group(1) if arg else "a comma-separated value"
        return f"{arg} is a sweep: add -m to run one job per value, or write key=[a,b] for a list"
    missing = re.search(r"Missing mandatory value: ([\w.]+)", str(err)) or re.search(
        r"Missing mandatory value: ([\w.]+)", str(cause))
    if isinstance(err, MissingMandatoryValue) or isinstance(cause, MissingMandatoryValue) or missing:
        key = missing.group(1) if missing else getattr(err, "full_key", None) or getattr(cause, "full_key", None)
        example = " (e.g. env=atari env.game=ms_pacman; `rlexp list` shows the games' options)" if key == "env.game" else ""
        return f"{key} is required: add {key}=<value>{example}"
    if isinstance(err, OverrideParseException):
        return f"malformed override: {first_line(err)}"
    line = _other_unit_line(cause) or (omegaconf_error_line(cause, command_line=True) if cause is not None else None)
    if line:
        return line
    text = first_line(err)
    if cause is not None and first_line(cause):
        text = f"{text}: {first_line(cause)}"
    return text or type(err).__name__


def _other_unit_line(cause: BaseException | None) -> str | None:
    """The line for a budget key of another family's unit that this run's algorithm section does
    not have (``algo.total_games=10`` on a gym run): the key this run counts with instead."""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    if not isinstance(cause, (ConfigAttributeError, ConfigKeyError)):
        return None
    from rlexp.budget import BUDGETS, other_unit_message
    from rlexp.build import trainer_class
    from rlexp.config import ALGOS

    key = str(getattr(cause, "full_key", "") or "")
    other = next((b for b in BUDGETS if key in b.keys().values()), None)
    ours = [name for name, algo in ALGOS.items() if algo.schema is getattr(cause, "object_type", None)]
    if other is None or not ours:
        return None
    budget = getattr(trainer_class(ours[0]), "budget", None)
    if budget is None or budget is other:
        return None
    return other_unit_message(key, other, budget, ours[0])


def _missing_config_line(err) -> str:
    """An unknown group option or group, or a launcher/sweeper whose plugin is not installed."""
    missing = err.missing_cfg_file or ""
    group, _, option = missing.rpartition("/")
    if group in ("hydra/launcher", "hydra/sweeper") and option in PLUGIN_EXTRAS:
        ours = "launcher" if group.endswith("launcher") else "sweep"
        extra = PLUGIN_EXTRAS[option]
        return (f"{ours} {option} needs a Hydra plugin that is not installed: "
                f"pip install 'rlexp[{extra}]' (or pip install {PLUGIN_PACKAGES[extra]})")
    if group and err.options:
        return f"unknown option {group}={option}; valid choices: {', '.join(err.options)}"
    if group:
        valid = ", ".join(config_groups())
        return f"unknown config group {group!r} (in {group}={option}); valid groups: {valid}"
    return first_line(err)


# Hydra plugins that are optional extras: option -> extra, extra -> its pip packages
PLUGIN_EXTRAS = {"joblib": "joblib", "submitit_local": "slurm", "submitit_slurm": "slurm", "ray": "ray",
                 "optuna": "optuna"}
PLUGIN_PACKAGES = {"joblib": "hydra-joblib-launcher", "slurm": "hydra-submitit-launcher",
                   "ray": "hydra-ray-launcher", "optuna": "hydra-optuna-sweeper"}


def _is_user_error(err: BaseException) -> bool:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from rlexp.errors import ConfigError

    if isinstance(err, ValueError) and str(err).startswith("Only one of --run, --multirun, --cfg"):
        return True  # Hydra's own command-line check (e.g. -m with --cfg)
    return isinstance(err, (ConfigError, HydraException, OmegaConfBaseException))


def _unwritable_path(err: OSError) -> bool:
    """An output path the user chose that cannot be made or written (no permission, a file in
    the way, a read-only or pseudo file system): bad input, not a crash."""
    return err.filename is not None and err.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT,
                                                      errno.ENOTDIR, errno.EEXIST, errno.EISDIR)


class _DropLines:
    """A text stream that drops writes starting with a prefix and passes the rest on."""

    def __init__(self, stream, prefix: str):
        self._stream, self._prefix = stream, prefix

    def write(self, text: str) -> int:
        return len(text) if text.startswith(self._prefix) else self._stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


# Hydra's own command-line flags (its argparse refuses one that comes after an override)
HYDRA_VALUE_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn", "--config-dir",
                     "-cd", "--experimental-rerun"}
HYDRA_FLAGS = {"-m", "--multirun", "--run", "-r", "--resolve", "--hydra-help", "--version", "--shell-completion",
               "-sc", "--info", "-i"}
HYDRA_INFO_CHOICES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}


def hydra_argv(args: list[str]) -> list[str]:
    """``args`` with Hydra's flags first and the overrides after them, as Hydra's parser needs.

    Raises:
        ValueError: an unknown flag, a flag without its value, or an override without a key (one line).
    """
    flags, overrides, rest = [], [], list(args)
    while rest:
        arg = rest.pop(0)
        name = arg.split("=", 1)[0] if arg.startswith("--") else arg
        if name in HYDRA_VALUE_FLAGS:
            if name == arg and not rest:
                raise ValueError(f"{arg} needs a value (e.g. --cfg job)")
            flags += [arg] if name != arg else [arg, rest.pop(0)]
        elif name in HYDRA_FLAGS:
            flags.append(arg)
            if name in ("--info", "-i") and rest and rest[0] in HYDRA_INFO_CHOICES:
                flags.append(rest.pop(0))
        elif arg.startswith("-"):
            raise ValueError(f"unknown option {arg}; `rlexp train --help` lists the options (overrides are key=value)")
        elif arg.lstrip("+~").startswith("=") or not arg.lstrip("+~"):
            raise ValueError(f"malformed override {arg!r}: a key is missing before '=' (write key=value, e.g. seed=5)")
        else:
            overrides.append(_quote_game_string(arg))
    return flags + overrides


def _quote_game_string(arg: str) -> str:
    """``env.game=breakthrough(rows=6,columns=6)`` as Hydra can parse it: an OpenSpiel game
    string with parameters, quoted (Hydra would read its parentheses and commas as its own
    grammar). Already-quoted values and plain names pass unchanged."""
    key, _, value = arg.partition("=")
    if key.lstrip("+~") != "env.game" or "(" not in value or value[:1] in ("'", '"'):
        return arg
    return f"{key}='" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def launch_hydra(args: list[str], prog: str = "rlexp train") -> int:
    """Run the Hydra entry with ``args`` as its command line; return the exit code.

    Bad input (a config or override Hydra or rlexp rejects) prints one ``error:`` line and
    returns 2. A crash inside training is re-raised with its traceback: that is a bug.
    """
    from rlexp.train import main

    saved_argv, saved_full = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    sys.argv = [prog, *args]
    saved_stderr = sys.stderr
    if not ({"-m", "--multirun"} & set(args)):
        # Hydra writes "Error executing job with overrides: [...]" before re-raising; for a
        # single run our one line says it all.
        sys.stderr = _DropLines(saved_stderr, "Error executing job with overrides:")
    # Let exceptions reach us instead of Hydra's multi-line report, so we can print one line.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    from rlexp.errors import RunStopped, TrainingError

    try:
        main()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except RunStopped as stop:  # SIGINT/SIGTERM: checkpoint saved, resume command printed
        return stop.exit_code
    except TrainingError as err:  # a NaN loss, a failing env: the message names the step and the checkpoint
        typer.echo(f"error: {err}", err=True)
        return 1
    except Exception as err:  # noqa: BLE001 - every user error becomes one line
        if _is_user_error(err):
            typer.echo(f"error: {format_error(err)}", err=True)
        elif isinstance(err, AssertionError) and "Unexpected type for root: NoneType" in str(err):
            typer.echo(f"error: {_absent_section(args)}", err=True)  # OmegaConf, on a key under a null section
        elif isinstance(err, OSError) and _unwritable_path(err):
            typer.echo(f"error: cannot write {err.filename}: {err.strerror}; choose another hydra.run.dir "
                       "(hydra.sweep.dir with -m)", err=True)
        else:
            raise
        return 2
    finally:
        sys.argv, sys.stderr = saved_argv, saved_stderr
        if saved_full is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved_full
    return 0


def _absent_section(args: list[str]) -> str:
    """The line for an override under a section this run's config leaves null (``lora.*`` with
    ``algo=pretrain``, ``model.*`` with a gym algorithm)."""
    from rlexp.config import TrainConfig

    optional = {name for name, f in TrainConfig.__dataclass_fields__.items() if f.default is None and name != "resume"}
    for arg in args:
        key = arg.split("=", 1)[0].lstrip("+~")
        if "." in key and key.split(".", 1)[0] in optional:
            section = key.split(".", 1)[0]
            users = ", ".join(_algos_with_section(section)) or "no algorithm"
            return f"{key}: this run's config has no {section} section ({section}.* is for algo={users})"
    return "an override sets a key under a section this run's config does not have"


def _algos_with_section(section: str) -> list[str]:
    """The algorithms whose config (``conf/algo/<name>.yaml``) has the optional ``section``."""
    from importlib.resources import files

    from omegaconf import OmegaConf

    users = []
    for path in sorted(files("rlexp.conf").joinpath("algo").iterdir(), key=lambda p: p.name):
        if path.name.endswith(".yaml"):
            defaults = OmegaConf.create(path.read_text()).get("defaults") or []
            if any(isinstance(d, str) and d.startswith(f"/schema/{section}/") for d in defaults):
                users.append(path.name[:-5])
    return users


# --------------------------------------------------------------------------- commands

TRUST_HELP = ("allow code the run's config names outside rlexp, torch.nn, torch.optim, gymnasium and ale_py "
              "(e.g. env.id=mymodule:Env)")



@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
    help="Train an agent. Arguments are Hydra overrides, e.g. `rlexp train algo=dqn env=cartpole seed=3`.",
)
def train(ctx: typer.Context) -> None:
    args = list(ctx.args)
    if "--from" in args:  # rlexp train --from SWEEP/best.yaml [overrides]: the file's overrides first
        i = args.index("--from")
        if i + 1 >= len(args):
            typer.echo("error: --from needs a file: rlexp train --from SWEEP_DIR/best.yaml", err=True)
            raise typer.Exit(2)
        try:
            args = [*_overrides_from(Path(args[i + 1])), *args[:i], *args[i + 2:]]
        except ValueError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2)
    if "--help" in args or "-h" in args:
        typer.echo("Usage: rlexp train [OVERRIDES...] [-m] [--cfg job|hydra|all]\n")
        typer.echo("Train an agent; every argument is a Hydra override.\n")
        typer.echo("Examples:\n  rlexp train algo=dqn env=cartpole seed=3 algo.lr=5e-4\n"
                   "  rlexp train -m algo.lr=1e-3,5e-4 seed=1,2\n  rlexp train --cfg job\n")
        typer.echo(GRAMMAR + "\n")
        typer.echo(groups_text())
        raise typer.Exit(0)
    from rlexp import sweeps

    try:
        args = hydra_argv(args)
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    code = launch_hydra(args)
    if code == 0 and sweeps.last_sweep.get("failed"):
        code = 1  # the sweep ran to its end, but some jobs failed (named above)
    raise typer.Exit(code)


@app.command(
    "resume",
    short_help="Continue a killed or stopped run in place, exactly where its last checkpoint left it.",
    help="Continue RUN_DIR from its newest good checkpoint: networks, optimizers, schedules, RNGs, replay "
    "buffer, envs (replayed), metrics.jsonl and the W&B run. See docs/resume.md for what is guaranteed.",
)
def resume_cmd(
    run_dir: str = typer.Argument(..., metavar="RUN_DIR", help="the run directory `rlexp train` printed"),
    budget: Optional[int] = typer.Option(None, "--budget", metavar="N",
                                         help="a new budget in the run's unit: agent steps, games, examples, pairs "
                                         "or prompts (train a finished run longer)"),
    trust: bool = typer.Option(False, "--trust", help=TRUST_HELP),
) -> None:
    from rlexp.errors import ConfigError, RunStopped, TrainingError
    from rlexp.train import resume

    if budget is not None and budget <= 0:
        typer.echo(f"error: --budget must be > 0, got {budget}", err=True)
        raise typer.Exit(2)
    try:
        resume(run_dir, trust=trust, budget=budget)
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    except TrainingError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1)
    except RunStopped as stop:
        raise typer.Exit(stop.exit_code)


def _overrides_from(path: Path) -> list[str]:
    """The ``overrides:`` list of a best.yaml (or any YAML holding one).

    Raises:
        ValueError: the file is missing or holds no override list (one line).
    """
    from omegaconf import ListConfig, OmegaConf

    if path.is_dir():
        path = path / "best.yaml"
    if not path.is_file():
        raise ValueError(f"--from {path}: no such file (a sweep writes SWEEP_DIR/best.yaml when it ends)")
    try:
        data = OmegaConf.load(path)
    except Exception as err:  # noqa: BLE001 - yaml errors of every kind become one line
        raise ValueError(f"--from {path} is not valid YAML: {first_line(str(err))}") from None
    overrides = data.get("overrides") if hasattr(data, "get") else None
    if not isinstance(overrides, ListConfig):
        raise ValueError(f"--from {path} has no 'overrides:' list")
    return [str(o) for o in overrides]


@app.command("list", help="List the config groups and their options.")
def list_options() -> None:
    for group, options in config_groups().items():
        typer.echo(f"{group}:")
        width = max(len(name) for name, _ in options)
        for name, doc in options:
            typer.echo(f"  {name:<{width}}  {doc}")


EVAL_OPTIONS = {  # rlexp eval's family options: parameter -> its flag (each family's trainer names the ones it takes)
    "episodes": "--episodes", "video": "--video", "video_episodes": "--video-episodes", "opponent": "--opponent",
    "games": "--games", "mcts_simulations": "--mcts-simulations", "simulations": "--simulations",
    "samples": "--samples", "prompts": "--prompts"}


@app.command(
    "eval",
    short_help="Evaluate a trained run's checkpoint: episodes (--video records mp4s), board-game matches, or an RL "
    "language model beside its SFT model.",
    help="Evaluate a run's checkpoint, appended to RUN_DIR/evals.jsonl. Gym runs: returns over N episodes, optionally "
    "mp4 videos in RUN_DIR/videos/ (`rlexp eval RUN --episodes 20 --video`). Board-game runs: win/draw/loss with 95% "
    "intervals against an opponent, half the games as each colour (`rlexp eval RUN --opponent mcts --games 200`). "
    "Language-model RL runs: the policy beside its SFT model on new prompts (`rlexp eval RUN --samples 8`).",
)
def eval_run(
    run_dir: str = typer.Argument(..., metavar="RUN_DIR",
                                  help="a run directory written by `rlexp train` (it holds config.yaml)"),
    checkpoint: str = typer.Option("latest", "--checkpoint", "-c", metavar="latest|best|PATH",
                                   help="latest, best (best in-training eval), a file in checkpoints/ or a path"),
    episodes: Optional[int] = typer.Option(None, "--episodes", "-n", metavar="N",
                                           help="gym runs: episodes to evaluate  [default: the run's eval_episodes]"),
    video: bool = typer.Option(False, "--video", help="gym runs: also record episodes as mp4 files in RUN_DIR/videos/"),
    video_episodes: Optional[int] = typer.Option(None, "--video-episodes", metavar="K",
                                                 help="gym runs: episodes to record with --video  [default: 1]"),
    opponent: Optional[str] = typer.Option(None, "--opponent", metavar="random|mcts|perfect|untrained",
                                           help="board-game runs: the opponent  [default: random]"),
    games: Optional[int] = typer.Option(None, "--games", metavar="N",
                                        help="board-game runs: games, half as each colour  [default: 100]"),
    mcts_simulations: Optional[int] = typer.Option(None, "--mcts-simulations", metavar="N",
                                                   help="board-game runs: the mcts opponent's simulations per move  "
                                                   "[default: the run's algo.mcts_opponent_simulations]"),
    simulations: Optional[int] = typer.Option(None, "--simulations", metavar="N",
                                              help="board-game runs: the agent's search simulations per move"),
    seed: Optional[int] = typer.Option(None, "--seed", metavar="S",
                                       help="env seed  [default: the seed of the run's first in-training eval]"),
    samples: Optional[int] = typer.Option(None, "--samples", metavar="N",
                                          help="language-model RL runs: answers shown side by side with the SFT "
                                          "model's  [default: 8]"),
    prompts: Optional[int] = typer.Option(None, "--prompts", metavar="N",
                                          help="language-model RL runs: new prompts the means are taken over  "
                                          "[default: 256]"),
    device: str = typer.Option("auto", "--device", metavar="DEVICE", help="auto, cpu, cuda or cuda:N"),
    trust: bool = typer.Option(False, "--trust", help=TRUST_HELP),
) -> None:
    from rlexp.build import trainer_class
    from rlexp.config import ALGOS
    from rlexp.errors import ConfigError
    from rlexp.runs import load_run_config

    given = {name: value for name, value in (
        ("episodes", episodes), ("video", video or None), ("video_episodes", video_episodes), ("opponent", opponent),
        ("games", games), ("mcts_simulations", mcts_simulations), ("simulations", simulations),
        ("samples", samples), ("prompts", prompts)) if value is not None}
    try:
        name = load_run_config(run_dir, trust=trust).algo.name
        family = trainer_class(name)
        if not family.eval_options:
            valid = [n for n in ALGOS if trainer_class(n).eval_options]
            raise ConfigError(f"{run_dir} is a run of algo={name}, which rlexp eval does not evaluate again (its "
                              f"evaluations are in metrics.jsonl); valid: runs of algo={', '.join(valid)}")
        wrong = [key for key in given if key not in family.eval_options]
        if wrong:
            flags = ", ".join(EVAL_OPTIONS[k] for k in family.eval_options)
            raise ConfigError(f"{EVAL_OPTIONS[wrong[0]]} is not for runs of algo={name}; their options: {flags}")
        _, lines = family.evaluate_saved(run_dir, checkpoint, seed, device, trust, **given)
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    for line in lines:
        typer.echo(line)


@app.command(
    "play",
    short_help="Play a board-game run's agent in the terminal, or replay a recorded game.",
    help="A person against a board-game run's agent (algo=alphazero): the board is printed, you type a move's number "
    "or name. `--replay FILE` prints a recorded game (RUN_DIR/games/*.jsonl) move by move instead.",
)
def play_cmd(
    run_dir: str = typer.Argument(..., metavar="RUN_DIR", help="a board-game run directory"),
    second: bool = typer.Option(False, "--second", help="let the agent move first"),
    simulations: Optional[int] = typer.Option(None, "--simulations", metavar="N",
                                              help="the agent's search simulations per move  [default: the run's]"),
    checkpoint: str = typer.Option("latest", "--checkpoint", "-c", metavar="latest|best|PATH"),
    replay_file: Optional[str] = typer.Option(None, "--replay", metavar="FILE", help="print a recorded game instead"),
    game_number: int = typer.Option(1, "--game", metavar="K", help="with --replay: the K-th game of the file"),
    device: str = typer.Option("auto", "--device", metavar="DEVICE", help="auto, cpu, cuda or cuda:N"),
    trust: bool = typer.Option(False, "--trust", help=TRUST_HELP),
) -> None:
    from rlexp.errors import ConfigError
    from rlexp.games.agent import load_agent, play, replay

    try:
        if replay_file:
            load_agent(run_dir, checkpoint, device, simulations, trust)  # a board-game run, or one line
            replay(replay_file, game_number)
            return
        play(run_dir, human_first=not second, simulations=simulations, checkpoint=checkpoint, device=device,
             trust=trust)
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)


@app.command(
    "report",
    context_settings={"ignore_unknown_options": True},
    short_help="Aggregate runs: IQM/mean/median with 95% CIs, learning curves, sweep jobs.",
    help="Aggregate the runs under PATHS (run directories, sweep directories or folders of them): runs are grouped "
    "by their config minus the seed (or by --by keys), each group's final scores summarized as IQM, mean and median "
    "with 95% bootstrap confidence intervals. --vs compares two sets of runs (probability of improvement). "
    "--out writes report.md, scores.csv and curves.png. `rlexp report A... --vs B...` compares two sets of runs.",
)
def report(
    paths: list[str] = typer.Argument(..., metavar="PATHS... [--vs PATHS...]",
                                      help="run or sweep directories, or folders of runs; after --vs: a second set "
                                      "to compare with (probability of improvement)"),
    by: Optional[str] = typer.Option(None, "--by", metavar="KEY[,KEY]", help="group by these config keys, e.g. algo.lr"),
    last_evals: int = typer.Option(1, "--last-evals", metavar="N", help="final score: mean of a run's last N evaluations"),
    out: Optional[str] = typer.Option(None, "--out", metavar="DIR", help="write report.md, scores.csv and curves.png here"),
    wandb_mode: Optional[str] = typer.Option(None, "--wandb", metavar="online|offline",
                                             help="also log the curves and the table as a W&B run (needs --out)"),
    wandb_project: str = typer.Option("rlexp", "--wandb-project", metavar="NAME", help="W&B project of --wandb"),
) -> None:
    from rlexp.errors import ConfigError
    from rlexp.reporting import report as reporting

    if last_evals < 1:
        typer.echo(f"error: --last-evals must be >= 1, got {last_evals}", err=True)
        raise typer.Exit(2)
    if wandb_mode is not None and (wandb_mode not in ("online", "offline") or not out):
        typer.echo("error: --wandb takes online or offline, and needs --out DIR for the files it logs", err=True)
        raise typer.Exit(2)
    vs = None
    if "--vs" in paths:  # rlexp report A1 A2 --vs B1 B2
        i = paths.index("--vs")
        paths, vs = paths[:i], paths[i + 1:]
        if not paths or not vs:
            typer.echo("error: --vs needs runs on both sides: rlexp report A... --vs B...", err=True)
            raise typer.Exit(2)
    unknown = [p for p in paths + (vs or []) if p.startswith("-")]
    if unknown:
        typer.echo(f"error: unknown option {unknown[0]}; see rlexp report --help", err=True)
        raise typer.Exit(2)
    roots = [Path(p) for p in paths]
    try:
        if out:
            check_writable_dir(out, "--out")
        result = reporting.build(roots, by=by.split(",") if by else None, vs=[Path(p) for p in vs] if vs else None,
                                 last_evals=last_evals)
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    _print_report(result, roots, last_evals)
    if out:
        for written in reporting.write(result, Path(out)):
            typer.echo(f"wrote {written}")
        if wandb_mode:
            typer.echo(f"W&B ({wandb_mode}): {reporting.log_to_wandb(result, Path(out), wandb_mode, wandb_project)}")


def _print_report(result: dict, roots: list[Path], last_evals: int) -> None:
    """The report's tables on the console: groups, comparisons, references, Atari aggregates, sweep jobs."""
    from rich.console import Console
    from rich.table import Table

    from rlexp import sweeps

    console = Console(width=200)
    final = "last evaluation" if last_evals == 1 else f"mean of the last {last_evals} evaluations"
    table = Table(title=f"final score ({final}), best IQM first; [95% bootstrap CI]", title_justify="left")
    for column in ("group", "runs", "IQM", "mean", "median"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for g in result["summaries"]:
        table.add_row(g.name, str(len(g.runs)), str(g.iqm), str(g.mean), str(g.median))
    console.print(table)
    if result["comparison"] is not None:
        console.print(f"probability of improvement P(A > B): {result['comparison']}")
    if result["references"]:
        rt = Table(title="published vs ours (ours: IQM of final scores)", title_justify="left")
        for column in ("group", "published", "ours", "human-normalized IQM", "comparable", "source / notes"):
            rt.add_column(column)
        for r in result["references"]:
            rt.add_row(r["group"], r["paper"], r["ours"], r["human_normalized_iqm"], "yes" if r["comparable"] else "no",
                       r["source"] + ("; " if r["notes"] else "") + r["notes"])
        console.print(rt)
    if result["aggregates"]:
        at = Table(title="aggregate over Atari games: human-normalized final scores [95% stratified bootstrap CI]",
                   title_justify="left")
        for column in ("method", "games", "runs", "IQM", "mean", "median"):
            at.add_column(column)
        for a in result["aggregates"]:
            at.add_row(a["method"], ", ".join(a["games"]), str(a["runs"]), str(a["iqm"]), str(a["mean"]), str(a["median"]))
        console.print(at)
    if result["overoptimization"]:
        console.print(_overoptimization_table(result["overoptimization"]))
    if result["aggregate_comparison"]:
        games, estimate = result["aggregate_comparison"]
        console.print(f"probability of improvement over {len(games)} games, mean over games of P(A > B): {estimate}")
    for root in roots:  # sweep directories: each job's outcome, failed ones included
        jobs = [(d, sweeps.job_summary(d)) for d in sweeps.job_dirs(root)] if root.is_dir() else []
        if not jobs:
            continue
        jt = Table(title=f"{root}: {len(jobs)} jobs", title_justify="left")
        for column in ("job", "status", "overrides", "result"):
            jt.add_column(column)
        for directory, record in jobs:
            finished = record.get("status") == "finished"
            value = f"{record['objective']:.2f}" if finished else record.get("error", "")
            jt.add_row(directory.name, record.get("status", "?"), " ".join(record.get("overrides", [])), value)
        console.print(jt)
    for path, problem in result["problems"]:
        console.print(f"note: {path}: {problem}")


def _overoptimization_table(rows: list[dict]) -> Any:
    """The RLHF groups' final KL, reward and gold (sampled and greedy) beside their SFT model's."""
    from rich.table import Table

    ot = Table(title="RLHF: final KL to the SFT model, reward-model score and gold utility of one sampled answer "
               "and of the greedy one (means over runs; --out draws gold_vs_kl.png)", title_justify="left")
    for column in ("group", "runs", "KL", "reward", "gold sampled", "SFT", "gain [95% t-interval]",
                   "gold greedy", "SFT", "gain [95% t-interval]"):
        ot.add_column(column, justify="left" if column == "group" else "right")
    for r in rows:
        (low, high), (low_g, high_g) = r["gold_gain_ci95"], r["gold_gain_greedy_ci95"]
        ot.add_row(r["group"], str(r["runs"]), f"{r['kl']:.3f}", f"{r['reward']:.3f}", f"{r['gold']:.3f}",
                   f"{r['sft_gold']:.3f}", f"{r['gold_gain']:+.3f} [{low:+.3f}, {high:+.3f}]",
                   f"{r['gold_greedy']:.3f}", f"{r['sft_gold_greedy']:.3f}",
                   f"{r['gold_gain_greedy']:+.3f} [{low_g:+.3f}, {high_g:+.3f}]")
    return ot
